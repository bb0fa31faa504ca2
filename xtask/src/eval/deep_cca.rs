//! `cargo xtask eval deep-cca`: two MLPs trained with the deep CCA loss against linear CCA on
//! the same held-out two-view data (views of an angle; see `mm_data::synth::cca::circle_views`).
//! `--checkpoint DIR` scores encoders saved by `train deep-cca`; without it the command trains
//! them first (in `--run-dir`) and then scores them.

use std::path::PathBuf;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_core::cca::CcaError;
use mm_core::cca::experiment::{
    DeepCcaExperimentConfig, DeepCcaReport, evaluate_deep_cca, load_deep_cca,
    run_deep_cca_experiment,
};
use mm_core::train::RunOptions;

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
    /// Score the encoders saved here (a run's `final/`) instead of training; the training
    /// flags are then ignored (the folder's config.json says how they were trained).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Also write the report as JSON here (correlations as fractions of 1).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct DeepCcaJob(DeepCcaExperimentConfig, RunOptions);

impl BackendJob for DeepCcaJob {
    type Output = Result<(DeepCcaExperimentConfig, DeepCcaReport), CcaError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        Ok((
            self.0.clone(),
            run_deep_cca_experiment::<B>(&self.0, &self.1, &[device])?,
        ))
    }
}

struct ScoreJob(PathBuf);

impl BackendJob for ScoreJob {
    type Output = Result<(DeepCcaExperimentConfig, DeepCcaReport), CcaError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, cfg) = load_deep_cca::<B::InnerBackend>(&self.0, &device)?;
        // The run folder's log, when the checkpoint is its `final/`.
        let metrics = self.0.parent().unwrap_or(&self.0).join("metrics.jsonl");
        let report = evaluate_deep_cca(&cfg, &model, &metrics, &device)?;
        Ok((cfg, report))
    }
}

/// Runs `eval deep-cca`.
pub fn run(args: DeepCcaEvalArgs) -> Result<()> {
    let device = args.device.device;
    let (cfg, report) = match args.checkpoint {
        Some(dir) => dispatch(device, ScoreJob(dir))??,
        None => {
            let cfg = DeepCcaExperimentConfig::new()
                .with_steps(args.steps)
                .with_noise(args.noise)
                .with_seed(args.seed);
            let run = RunOptions::new(&args.run_dir);
            dispatch(device, DeepCcaJob(cfg, run))??
        }
    };
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
    if let Some((first, last)) = report.loss_first_last {
        println!("training loss {first:.3} -> {last:.3}");
    }
    if let Some(out) = args.out {
        let json = serde_json::json!({ "config": cfg, "report": report });
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
