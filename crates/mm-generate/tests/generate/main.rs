//! mm-generate's integration tests, in one binary (one link instead of two; CI's build time is
//! mostly compiling and linking test binaries against Burn's backends).

mod caption;
mod diffusion;
