//! `cargo xtask eval localizer --checkpoint DIR [--data FILE] [--out FILE]`: pointing game,
//! cIoU and their baselines for a trained localizer on held-out scenes.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use image::RgbImage;
use mm_core::BackendJob;
use mm_video::av::localizer_eval::{
    LocalizerReport, evaluate_with_gallery, load_localizer, load_test_scenes_with,
};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{
    bridge_figures, print_localizer_report, scenes_manifest, sound_embeddings, sound_input,
};

/// Flags of `eval localizer`.
#[derive(Args)]
pub struct LocalizerEvalArgs {
    /// A trained model folder (a run's `final/`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// An image-mask manifest with `audio` (default: datasets/synth/scenes/scenes.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also write the report as JSON here (and a gallery PNG beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: LocalizerEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<(LocalizerReport, RgbImage)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, config) = load_localizer::<B::InnerBackend>(&self.args.checkpoint, &device)?;
        let embeddings = sound_embeddings(&config)?;
        let scenes = load_test_scenes_with(
            &scenes_manifest(self.args.data.clone())?,
            config.scenes.size,
            sound_input(embeddings.as_ref()),
        )?;
        let (mut report, gallery) = evaluate_with_gallery(&model, &config, &scenes, &device)?;
        report.bridge = bridge_figures(&model, &config, &scenes, &device)?;
        Ok((report, gallery))
    }
}

/// Runs `eval localizer`.
pub fn run(args: LocalizerEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let (report, img) = dispatch(device, EvalJob { args })??;
    print_localizer_report(&report, out.as_deref(), Some(img))
}
