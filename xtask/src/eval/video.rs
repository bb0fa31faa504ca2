//! `cargo xtask eval video --checkpoint DIR [--out FILE]`: held-out accuracy, per-class table
//! and confusion matrix of a trained video classifier (the JSON has `n_test` and `accuracy`).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_video::tasks::Strip;
use mm_video::train::{VideoReport, VideoTrainConfig, evaluate_video, load_video};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{print_video_report, task_manifest, video_strips};

/// Flags of `eval video`.
#[derive(Args)]
pub struct VideoEvalArgs {
    /// A trained model folder (a run's `final/`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The clip manifest; default: the one of the model's task.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: VideoEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<(VideoReport, VideoTrainConfig, Vec<Strip>)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, folder) = load_video::<B::InnerBackend>(&self.args.checkpoint, &device)?;
        let manifest = task_manifest(folder.config.task, self.args.data.clone())?;
        let test = video_strips(&folder.config, &manifest, "test")?;
        let report = evaluate_video(&model, &folder, &test, &device)?;
        Ok((report, folder.config, test))
    }
}

/// Runs `eval video`.
pub fn run(args: VideoEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let (report, config, test) = dispatch(device, EvalJob { args })??;
    print_video_report(&report, out.as_deref(), (&config, &test))
}
