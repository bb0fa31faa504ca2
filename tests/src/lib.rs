//! Shared helpers of the cross-crate integration tests in `tests/tests/`.
//!
//! - [`tiny_clip`]: a CLIP small enough to train in a test; [`tiny_clip_run`] its training.
//! - [`shapes_dataset`]: a generated image-caption set of coloured shapes, written as PNG files
//!   plus a manifest, so tests exercise the same loaders as real data.
//! - [`copy_module`]: moves a model's weights between backends for parity checks.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::Backend;
use mm_text::ClipTextConfig;
use mm_vision::ClipVisionConfig;
use mm_vl::ClipConfig;
use mm_vl::train::{ClipTrainConfig, TrainSettings};

/// A CLIP with two-layer towers of width 32 over 16 px images and 12-token texts.
pub fn tiny_clip() -> ClipConfig {
    ClipConfig::new(
        ClipTextConfig::new(32, 64, 16, 2, 4).with_max_position_embeddings(12),
        ClipVisionConfig::new(32, 64, 16, 2, 4, 16, 4),
        16,
    )
}

/// Training [`tiny_clip`] on the 16 pairs of [`shapes_dataset`] (one batch holds them all),
/// `steps` steps with a checkpoint every 2.
pub fn tiny_clip_run(steps: usize) -> ClipTrainConfig {
    let train = TrainSettings::new()
        .with_batch_size(16)
        .with_steps(steps)
        .with_lr(3e-3)
        .with_warmup_steps(2)
        .with_checkpoint_every(2)
        .with_max_shift(0);
    ClipTrainConfig::new(tiny_clip(), train)
}

/// Writes 16 PNGs (4 colours x 4 shapes, `size` px, white background) and `manifest.jsonl`
/// into `dir` ([`mm_data::synth::shapes`]); each record's caption is e.g. "a red circle" and
/// its label the shape. Returns the manifest path.
pub fn shapes_dataset(dir: &Path, size: u32) -> PathBuf {
    mm_data::synth::shapes::write_shapes(dir, size, 16).expect("write the shapes set")
}

/// Rebuilds `module`'s weights on backend `B2` (through Burn's record format).
pub fn copy_module<B1: Backend, B2: Backend, M1: Module<B1>, M2: Module<B2>>(
    from: M1,
    to: M2,
    device: &B2::Device,
) -> M2 {
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = Recorder::<B1>::record(&recorder, from.into_record(), ()).expect("record");
    let record = Recorder::<B2>::load(&recorder, bytes, device).expect("load");
    to.load_record(record)
}
