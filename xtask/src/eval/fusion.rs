//! `cargo xtask eval fusion`: every fusion strategy trained on a synergy (XOR) task and a
//! redundancy task; prints accuracy, parameters and training time. `--checkpoint DIR` scores
//! the strategies `train fusion` saved under DIR; without it the command trains them first.

use std::path::PathBuf;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_core::fusion::FusionError;
use mm_core::fusion::benchmark::{
    FusionBenchmarkConfig, FusionResult, FusionTask, evaluate_fusion, run_fusion_benchmark,
};

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
    /// Score the strategies saved under this folder (by `train fusion`) instead of training.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
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

struct ScoreJob(PathBuf);

impl BackendJob for ScoreJob {
    type Output = Result<Vec<FusionResult>, FusionError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        evaluate_fusion::<B::InnerBackend>(&self.0, &device)
    }
}

/// Runs `eval fusion`.
pub fn run(args: FusionEvalArgs) -> Result<()> {
    let device = args.device.device;
    let results = match &args.checkpoint {
        Some(dir) => dispatch(device, ScoreJob(dir.clone()))??,
        None => {
            let cfg = FusionBenchmarkConfig::new()
                .with_steps(args.steps)
                .with_seed(args.seed);
            println!(
                "two modalities of width {}, fused width {}, {} train / {} test samples, {} Adam steps",
                cfg.d_modality, cfg.hidden, cfg.n_train, cfg.n_test, cfg.steps
            );
            dispatch(device, FusionJob(cfg, args.run_dir.clone()))??
        }
    };
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
