//! mm-retrieval's integration tests, in one binary (one link instead of three; CI's build time
//! is mostly compiling and linking test binaries against Burn's backends).

mod common;
mod compaction;
mod index;
mod usearch;
