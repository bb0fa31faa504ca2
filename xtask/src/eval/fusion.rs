//! `cargo xtask eval fusion`: every fusion strategy trained on a synergy (XOR) task and a
//! redundancy task; prints accuracy, parameters and training time.

use std::path::PathBuf;

use crate::common::DeviceArg;
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::fusion::FusionError;
use mm_core::fusion::benchmark::{
    FusionBenchmarkConfig, FusionResult, FusionTask, run_fusion_benchmark,
};
use mm_core::{BackendJob, dispatch};

/// Flags of `eval fusion`.
#[derive(Args)]
pub struct FusionEvalArgs {
    /// Full-batch Adam steps per strategy and task.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Seed of data and initialization.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the rows as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder of the training runs, one per task and strategy (`synergy/late-sum/`...).
    #[arg(long, default_value = "runs/fusion")]
    run_dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

struct FusionJob(FusionBenchmarkConfig, PathBuf);

impl BackendJob for FusionJob {
    type Output = Result<Vec<FusionResult>, FusionError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        run_fusion_benchmark::<B>(&self.0, &self.1, &[device])
    }
}

/// Runs `eval fusion`.
pub fn run(args: FusionEvalArgs) -> Result<()> {
    let cfg = FusionBenchmarkConfig::new()
        .with_steps(args.steps)
        .with_seed(args.seed);
    let device = args.device.device;
    let results = dispatch(device, FusionJob(cfg.clone(), args.run_dir.clone()))??;
    println!(
        "two modalities of width {}, fused width {}, {} train / {} test samples, {} Adam steps",
        cfg.d_modality, cfg.hidden, cfg.n_train, cfg.n_test, cfg.steps
    );
    println!(
        "{:<17} {:>9} {:>11} {:>12} {:>9}",
        "strategy", "synergy", "redundancy", "fusion params", "train s"
    );
    for synergy in results.iter().filter(|r| r.task == FusionTask::Synergy) {
        let redundancy = results
            .iter()
            .find(|r| r.task == FusionTask::Redundancy && r.strategy == synergy.strategy)
            .expect("both tasks ran");
        println!(
            "{:<17} {:>8.1}% {:>10.1}% {:>12} {:>9.2}",
            synergy.strategy,
            100.0 * synergy.accuracy,
            100.0 * redundancy.accuracy,
            synergy.fusion_params,
            synergy.train_seconds + redundancy.train_seconds
        );
    }
    if let Some(out) = args.out {
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&results)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
