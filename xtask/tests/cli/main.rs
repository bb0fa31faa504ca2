//! The command-line tests: each runs the built `xtask` binary and checks what it writes and
//! prints. One test binary for all (one link instead of four).

mod caption;
mod cca;
mod common;
mod index;
mod stress;
mod train_eval;
mod zero_shot;
