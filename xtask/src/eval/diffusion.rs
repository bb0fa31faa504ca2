//! `cargo xtask eval diffusion --checkpoint DIR [--out FILE] [--guidance 0,1,2,3,5]
//! [--samples N] [--steps N] [--scheduler ddim|ddpm|euler] [--grids DIR]`: does a trained
//! text-to-image pipeline draw "a {colour} {shape}" when asked? A small CNN trained on real
//! easy-VQA images (kept in `runs/diffusion-judge/`, trained on first use) judges every
//! generated image; the table gives the fraction right by guidance scale, the held-out
//! prompt apart, and the grids of every scale go to `--grids`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::train::RunOptions;
use mm_core::{BackendJob, dispatch};
use mm_generate::caption::{CaptionSet, vit_processor};
use mm_generate::diffusion::eval::{DiffusionReport, ShapeEvalOptions, evaluate_shapes, save_grid};
use mm_generate::diffusion::judge::{judge_accuracy, train_or_load_judge};
use mm_generate::diffusion::train::DiffusionTrainConfig;
use mm_generate::diffusion::{SchedulerKind, TextToImage};

use crate::common::{DeviceArg, datasets_dir};
use crate::train::parse_caption_source;

/// Flags of `eval diffusion`.
#[derive(Args)]
pub struct DiffusionEvalArgs {
    /// A pipeline folder (a run's `final/`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Guidance scales to compare.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,5")]
    guidance: Vec<f32>,
    /// Images per prompt and scale.
    #[arg(long, default_value_t = 8)]
    samples: usize,
    /// Denoising steps.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// Sampler (default: the pipeline's own, DDIM for ours).
    #[arg(long)]
    scheduler: Option<String>,
    /// Seed of the starting noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the judge is kept (trained there on first use).
    #[arg(long, default_value = "runs/diffusion-judge")]
    judge_dir: PathBuf,
    /// Write one grid per scale here (`w{scale}.png`: a row per prompt).
    #[arg(long)]
    grids: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

/// Parses `--scheduler`.
pub fn parse_scheduler(name: &str) -> Result<SchedulerKind> {
    SchedulerKind::parse(name)
        .with_context(|| format!("unknown scheduler `{name}`: expected ddim, ddpm or euler"))
}

struct EvalJob {
    args: DiffusionEvalArgs,
    options: ShapeEvalOptions,
}

impl BackendJob for EvalJob {
    type Output = Result<DiffusionReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let pipeline = TextToImage::<B::InnerBackend>::load(&a.checkpoint, &device)
            .with_context(|| format!("loading the pipeline {}", a.checkpoint.display()))?;
        let size = pipeline.unet_config.sample_size.unwrap_or(32) as u32;
        let manifest = datasets_dir().join("vqa/captions.jsonl");
        anyhow::ensure!(
            manifest.exists(),
            "{} not found: run `cargo xtask data fetch vqa` first",
            manifest.display()
        );
        let load = |split: &str| -> Result<CaptionSet> {
            let source = parse_caption_source(&format!("shapes={}:{split}", manifest.display()))?;
            Ok(CaptionSet::load(&[source], &vit_processor(size))?)
        };
        eprintln!("the judge: {}", a.judge_dir.display());
        let judge =
            train_or_load_judge::<B>(load("train")?, 600, &RunOptions::new(&a.judge_dir), &device)?;
        let accuracy = judge_accuracy(&judge, &load("test")?, &device);
        eprintln!(
            "judge accuracy on real test images: {:.1}%",
            100.0 * accuracy
        );
        if let Some(dir) = &a.grids {
            std::fs::create_dir_all(dir)?;
        }
        let mut failed = None;
        let report = evaluate_shapes(
            &pipeline,
            &judge,
            accuracy,
            &self.options,
            &device,
            &mut |w, images| {
                eprintln!("guidance {w}: sampled");
                if let Some(dir) = &a.grids {
                    let path = dir.join(format!("w{w}.png"));
                    if let Err(e) = save_grid(images, self.options.samples, 2, &path) {
                        failed = Some(format!("{}: {e}", path.display()));
                    }
                }
            },
        )?;
        if let Some(e) = failed {
            anyhow::bail!("writing a grid failed: {e}");
        }
        Ok(report)
    }
}

/// Runs `eval diffusion`.
pub fn run(args: DiffusionEvalArgs) -> Result<()> {
    let held_out = std::fs::read(args.checkpoint.join("mm_train_config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<DiffusionTrainConfig>(&b).ok())
        .map(|c| c.held_out)
        .unwrap_or_default();
    let options = ShapeEvalOptions {
        guidances: args.guidance.clone(),
        samples: args.samples,
        steps: args.steps,
        scheduler: args.scheduler.as_deref().map(parse_scheduler).transpose()?,
        seed: args.seed,
        held_out,
    };
    let out = args.out.clone();
    let device = args.device.device;
    let report = dispatch(device, EvalJob { args, options })??;
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>10}",
        "guidance", "both", "colour", "shape", "held-out"
    );
    for (w, both) in &report.accuracy_by_guidance {
        let pct = |m: &std::collections::BTreeMap<String, f64>| {
            m.get(w)
                .map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v))
        };
        println!(
            "{:<10} {:>7.1}% {:>8} {:>8} {:>10}",
            w,
            100.0 * both,
            pct(&report.trained.colour),
            pct(&report.trained.shape),
            pct(&report.held_out_scores.both)
        );
    }
    println!(
        "chance: 4.2% both, 12.5% colour, 33.3% shape; judge on real test images: {:.1}%; held out: {}",
        100.0 * report.judge_accuracy,
        report.held_out.join(", ")
    );
    if let Some(out) = out {
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
