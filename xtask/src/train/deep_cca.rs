//! `cargo xtask train deep-cca`: the two deep CCA encoders trained on the nonlinear two-view
//! problem (`mm_data::synth::cca::circle_views`); `eval deep-cca --checkpoint` scores them.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::cca::CcaError;
use mm_core::cca::experiment::{DeepCcaExperimentConfig, train_deep_cca};
use mm_core::train::{RunOptions, read_losses};
use mm_core::{BackendJob, replicas};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags};

/// Flags of `train deep-cca`.
#[derive(Args)]
pub struct DeepCcaTrainArgs {
    #[command(flatten)]
    run: RunFlags,
    /// Folder for checkpoints, metrics and the final model.
    #[arg(long, default_value = "runs/deep-cca")]
    run_dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

struct TrainJob(DeepCcaExperimentConfig, RunOptions, usize);

impl BackendJob for TrainJob {
    type Output = Result<(), CcaError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        train_deep_cca::<B>(&self.0, &self.1, &replicas(&device, self.2)).map(|_| ())
    }
}

/// Runs `train deep-cca`.
pub fn run(args: DeepCcaTrainArgs) -> Result<()> {
    let cfg = args
        .run
        .settings(DeepCcaExperimentConfig::new(), "a deep CCA experiment")?;
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&args.run_dir)
    };
    let devices = args.devices.devices as usize;
    dispatch(args.device.device, TrainJob(cfg, run, devices))??;
    let losses = read_losses(&args.run_dir.join("metrics.jsonl"))?;
    if let (Some(first), Some(last)) = (losses.first(), losses.last()) {
        println!("training loss {:.3} -> {:.3}", first.1, last.1);
    }
    println!(
        "saved {}; score it with `cargo xtask eval deep-cca --checkpoint {0}`",
        args.run_dir.join("final").display()
    );
    Ok(())
}
