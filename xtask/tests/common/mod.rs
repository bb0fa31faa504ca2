//! Running the built `xtask` binary from the CLI tests.

use std::process::{Command, Output};

/// Runs `xtask` with `args` and returns what it printed and its status.
pub fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap()
}

/// The standard output of a run that must have succeeded (its standard error on failure).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}
