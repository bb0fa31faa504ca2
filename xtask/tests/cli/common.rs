//! Running the built `xtask` binary from the CLI tests, and the tiny model they run it on.

use std::path::Path;
use std::process::{Command, Output};

use burn::backend::Flex;
use mm_text::ClipTextConfig;
use mm_vision::ClipVisionConfig;
use mm_vl::checkpoint::save_model;
use mm_vl::clip::ClipConfig;

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

/// Saves a tiny CLIP with random weights (32-wide towers, 16-d space, 16 px images) as a model
/// folder of ours at `dir`.
pub fn tiny_clip_folder(dir: &Path) {
    let config = ClipConfig::new(
        ClipTextConfig::new(32, 64, 16, 2, 4).with_max_position_embeddings(12),
        ClipVisionConfig::new(32, 64, 16, 2, 4, 16, 4),
        16,
    );
    save_model(
        &config.init::<Flex>(&Default::default()).unwrap(),
        &config,
        dir,
    )
    .unwrap();
}
