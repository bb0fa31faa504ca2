//! Every backend against the reference one, in one binary (one link instead of three; CI's
//! build time is mostly linking test binaries against Burn's backends).
//!
//! The reference models are seeded on ndarray and copied onto the backend under test, so a
//! test's values never depend on another test's draws from Burn's process-global RNG.

mod backend_parity;
mod crate_ops;
mod devices;
mod math_backends;
