//! `cargo xtask eval av-sync --checkpoint DIR [--out FILE]`: offset top-1, in-sync AUC and the
//! shuffled-sound control of a trained synchronization model on the held-out clips.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_video::av::{SyncReport, evaluate_sync, load_sync};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{av_clips, av_sync_manifest, print_sync_report};

/// Flags of `eval av-sync`.
#[derive(Args)]
pub struct AvSyncEvalArgs {
    /// A trained model folder (a run's `final/`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// `synth` (the controlled set), `film` (the film with its soundtrack, tested on minutes
    /// 8-10), `film-story` (tested inside the story, 6:06-8:09) or a manifest.
    #[arg(long, default_value = "synth")]
    data: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: AvSyncEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<SyncReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, config) = load_sync::<B::InnerBackend>(&self.args.checkpoint, &device)?;
        let manifest = av_sync_manifest(&self.args.data)?;
        let test = av_clips(&manifest, "test", config.size)?;
        Ok(evaluate_sync(&model, &config, &test, &device)?)
    }
}

/// Runs `eval av-sync`.
pub fn run(args: AvSyncEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let report = dispatch(device, EvalJob { args })??;
    print_sync_report(&report, out.as_deref())
}
