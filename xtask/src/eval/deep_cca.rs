//! `cargo xtask eval deep-cca`: two MLPs trained with the deep CCA loss against linear CCA on
//! the same held-out two-view data (views of an angle; see `mm_data::synth::cca::circle_views`).

use std::path::PathBuf;

use crate::common::DeviceArg;
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::cca::CcaError;
use mm_core::cca::experiment::{DeepCcaExperimentConfig, DeepCcaReport, run_deep_cca_experiment};
use mm_core::train::RunOptions;
use mm_core::{BackendJob, dispatch};

/// Flags of `eval deep-cca`.
#[derive(Args)]
pub struct DeepCcaEvalArgs {
    /// Adam steps.
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Noise standard deviation of both views.
    #[arg(long, default_value_t = 0.05)]
    noise: f64,
    /// Seed of data, batches and initialization.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the encoders' training run (checkpoints, metrics.jsonl, final/).
    #[arg(long, default_value = "runs/deep-cca")]
    run_dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

struct DeepCcaJob(DeepCcaExperimentConfig, RunOptions);

impl BackendJob for DeepCcaJob {
    type Output = Result<DeepCcaReport, CcaError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        run_deep_cca_experiment::<B>(&self.0, &self.1, &[device])
    }
}

/// Runs `eval deep-cca`.
pub fn run(args: DeepCcaEvalArgs) -> Result<()> {
    let cfg = DeepCcaExperimentConfig::new()
        .with_steps(args.steps)
        .with_noise(args.noise)
        .with_seed(args.seed);
    let device = args.device.device;
    let run = RunOptions::new(&args.run_dir);
    let report = dispatch(device, DeepCcaJob(cfg.clone(), run))??;
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    println!(
        "X = (cos t, sin t), Y = (cos 2t, sin 2t), noise {}, {} held-out pairs, k = {}",
        cfg.noise, cfg.n_test, cfg.k
    );
    println!("{:<34} {:>8} {:>22}", "method", "total", "correlations");
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{:<34} {:>8.3} {:>22}",
        "linear CCA",
        sum(&report.linear),
        fmt(&report.linear)
    );
    println!(
        "{:<34} {:>8.3} {:>22}",
        format!("deep CCA (2 x MLP, {} steps)", cfg.steps),
        sum(&report.deep),
        fmt(&report.deep)
    );
    println!(
        "training loss {:.3} -> {:.3}",
        report.loss_first_last.0, report.loss_first_last.1
    );
    Ok(())
}
