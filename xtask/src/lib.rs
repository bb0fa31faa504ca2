//! The parts of the mm command line that need no backend: JSON configs with `--set`
//! overrides, and benchmark figures with their ratios and medians.
//!
//! They live in this small library so that their unit tests compile without the binary:
//! the binary (`main.rs`, every command generic over every compiled backend) is the
//! workspace's longest compile, and `cargo test` would otherwise build it twice (once for
//! the CLI tests to run, once more as its own test harness). `Cargo.toml` sets `test = false`
//! on the binary; the commands are tested end to end through it in `tests/`.

pub mod config;
pub mod figure;
