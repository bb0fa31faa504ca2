//! mm-vl's integration tests, in one binary (one link instead of five; CI's build time is
//! mostly linking test binaries against Burn's backends).

mod common;
mod hf_forms;
mod hf_parity;
mod hf_vilt;
mod vqa;
mod zero_shot;
