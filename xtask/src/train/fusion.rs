//! `cargo xtask train fusion`: every fusion strategy trained on the synergy and the redundancy
//! task, each in `RUN_DIR/<task>/<strategy>/`; `eval fusion --checkpoint RUN_DIR` scores them.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::fusion::FusionError;
use mm_core::fusion::benchmark::{FusionBenchmarkConfig, train_fusion};
use mm_core::{BackendJob, replicas};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags};

/// Flags of `train fusion`.
#[derive(Args)]
pub struct FusionTrainArgs {
    #[command(flatten)]
    run: RunFlags,
    /// Folder of the runs, one per task and strategy (`synergy/late-sum/`...).
    #[arg(long, default_value = "runs/fusion")]
    run_dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

struct TrainJob(FusionBenchmarkConfig, PathBuf, bool, usize);

impl BackendJob for TrainJob {
    type Output = Result<(), FusionError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        train_fusion::<B>(&self.0, &self.1, self.2, &replicas(&device, self.3))
    }
}

/// Runs `train fusion`.
pub fn run(args: FusionTrainArgs) -> Result<()> {
    let cfg = args
        .run
        .settings(FusionBenchmarkConfig::new(), "a fusion benchmark")?;
    let job = TrainJob(
        cfg,
        args.run_dir.clone(),
        args.run.resume,
        args.devices.devices as usize,
    );
    dispatch(args.device.device, job)??;
    println!(
        "saved every strategy under {}; score them with `cargo xtask eval fusion --checkpoint {0}`",
        args.run_dir.display()
    );
    Ok(())
}
