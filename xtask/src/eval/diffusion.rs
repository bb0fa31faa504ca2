//! `cargo xtask eval diffusion --checkpoint DIR [--out FILE] [--guidance 0,1,2,3,5]
//! [--samples N] [--steps N] [--scheduler ddim|ddpm|euler] [--guidance-rescale PHI]
//! [--thresholding RATIO:MAX] [--grids DIR]`: does a trained text-to-image pipeline draw "a {colour} {shape}" when asked? A small CNN trained on real
//! easy-VQA images (kept in `runs/diffusion-judge/`, trained on first use) judges every
//! generated image; the table gives the fraction right by guidance scale, the held-out
//! prompt apart, and the grids of every scale go to `--grids`.
//!
//! With `--captions NAME=MANIFEST[:SPLIT]` (any captioned images, e.g. the emoji) the judge is
//! a CLIP instead (`--clip`, default `runs/clip/final`): the CLIP score of the generated
//! images against their prompts, beside the real images' and mismatched pairs'.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_core::train::RunOptions;
use mm_generate::caption::{CaptionSet, vit_processor};
use mm_generate::diffusion::clip_score::{ClipScoreReport, evaluate_clip_score, pick_prompts};
use mm_generate::diffusion::eval::{DiffusionReport, ShapeEvalOptions, evaluate_shapes, save_grid};
use mm_generate::diffusion::judge::{judge_accuracy, train_or_load_judge};
use mm_generate::diffusion::train::DiffusionTrainConfig;
use mm_generate::diffusion::{SchedulerConfig, SchedulerKind, TextToImage, Thresholding};
use mm_vl::hf::load_any_clip;

use crate::backend::dispatch;
use crate::common::{DeviceArg, datasets_dir};
use crate::train::parse_caption_source;

/// Steps (of 64 images) the judge trains for on first use.
const JUDGE_STEPS: usize = 2000;

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
    /// Guidance rescale phi in [0, 1] (diffusers' `guidance_rescale`; 0: off).
    #[arg(long, default_value_t = 0.0)]
    guidance_rescale: f32,
    /// Dynamic thresholding (DDPM, DDIM), `RATIO:MAX`: the quantile of the predicted clean
    /// image's absolute values and the largest threshold (diffusers' `thresholding` with its
    /// `dynamic_thresholding_ratio` and `sample_max_value`), e.g. `0.995:1.5`.
    #[arg(long, value_name = "RATIO:MAX", value_parser = parse_thresholding)]
    thresholding: Option<Thresholding>,
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
    /// Score by CLIP on these captioned images (`NAME=MANIFEST[:SPLIT]`; the prompts are their
    /// first captions) instead of judging easy-VQA shapes.
    #[arg(long, value_name = "NAME=MANIFEST[:SPLIT]")]
    captions: Option<String>,
    /// The CLIP that scores (`--captions`): a folder of ours or an HF CLIP folder.
    #[arg(long, default_value = "runs/clip/final")]
    clip: PathBuf,
    /// How many prompts `--captions` scores (spread evenly over the manifest).
    #[arg(long, default_value_t = 48)]
    prompts: usize,
    #[command(flatten)]
    device: DeviceArg,
}

/// Parses `--thresholding RATIO:MAX`, checking both as the scheduler does.
pub fn parse_thresholding(text: &str) -> Result<Thresholding> {
    let (ratio, max) = text
        .split_once(':')
        .with_context(|| format!("--thresholding `{text}`: expected RATIO:MAX, e.g. 0.995:1.5"))?;
    let number = |s: &str, what: &str| {
        s.trim()
            .parse::<f64>()
            .with_context(|| format!("--thresholding `{text}`: {what} `{s}` is not a number"))
    };
    let t = Thresholding {
        ratio: number(ratio, "the ratio")?,
        max: number(max, "the maximum")?,
    };
    SchedulerConfig::defaults(SchedulerKind::Ddim)
        .with_thresholding(t)
        .map_err(|e| anyhow::anyhow!("--thresholding `{text}`: {e}"))?;
    Ok(t)
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

/// What `eval diffusion` measured.
enum Report {
    Shapes(DiffusionReport),
    ClipScore(ClipScoreReport),
}

/// A grid writer for `on_images`: `w{scale}.png` under `dir`, the first failure kept.
fn grid_writer<'a, B: burn::tensor::backend::Backend>(
    dir: Option<&'a Path>,
    columns: usize,
    failed: &'a mut Option<String>,
) -> impl FnMut(f32, &Tensor<B, 4>) + 'a {
    move |w, images| {
        eprintln!("guidance {w}: sampled");
        if let Some(dir) = dir {
            let path = dir.join(format!("w{w}.png"));
            if let Err(e) = save_grid(images, columns, 2, &path) {
                failed.get_or_insert(format!("{}: {e}", path.display()));
            }
        }
    }
}

impl EvalJob {
    fn clip_score<B: AutodiffBackend>(
        &self,
        pipeline: &TextToImage<B::InnerBackend>,
        captions: &str,
        device: &B::Device,
    ) -> Result<ClipScoreReport> {
        let a = &self.args;
        let size = pipeline.unet_config.sample_size.unwrap_or(32) as u32;
        let set = CaptionSet::load(&[parse_caption_source(captions)?], &vit_processor(size))?;
        let clip = load_any_clip::<B::InnerBackend>(&a.clip, device)
            .with_context(|| format!("loading the scoring CLIP {}", a.clip.display()))?;
        let real = pick_prompts(&set, a.prompts);
        let mut failed = None;
        let report = evaluate_clip_score(
            pipeline,
            &clip,
            &real,
            &self.options,
            device,
            &mut grid_writer(a.grids.as_deref(), self.options.samples, &mut failed),
        )?;
        if let Some(e) = failed {
            anyhow::bail!("writing a grid failed: {e}");
        }
        Ok(report)
    }
}

impl BackendJob for EvalJob {
    type Output = Result<Report>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = &self.args;
        let pipeline = TextToImage::<B::InnerBackend>::load(&a.checkpoint, &device)
            .with_context(|| format!("loading the pipeline {}", a.checkpoint.display()))?;
        if let Some(dir) = &a.grids {
            std::fs::create_dir_all(dir)?;
        }
        if let Some(captions) = &a.captions {
            return Ok(Report::ClipScore(
                self.clip_score::<B>(&pipeline, captions, &device)?,
            ));
        }
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
        let judge = train_or_load_judge::<B>(
            load("train")?,
            JUDGE_STEPS,
            &RunOptions::new(&a.judge_dir),
            &device,
        )?;
        let accuracy = judge_accuracy(&judge, &load("test")?, &device);
        eprintln!(
            "judge accuracy on real test images: {:.1}%",
            100.0 * accuracy
        );
        let mut failed = None;
        let report = evaluate_shapes(
            &pipeline,
            &judge,
            accuracy,
            &self.options,
            &device,
            &mut grid_writer(a.grids.as_deref(), self.options.samples, &mut failed),
        )?;
        if let Some(e) = failed {
            anyhow::bail!("writing a grid failed: {e}");
        }
        Ok(Report::Shapes(report))
    }
}

/// Runs `eval diffusion`.
pub fn run(args: DiffusionEvalArgs) -> Result<()> {
    // Refused before the judge trains or any image is sampled.
    if !(0.0..=1.0).contains(&args.guidance_rescale) {
        anyhow::bail!(
            "--guidance-rescale {}: expected a value in [0, 1]",
            args.guidance_rescale
        );
    }
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
        guidance_rescale: args.guidance_rescale,
        thresholding: args.thresholding,
        seed: args.seed,
        held_out,
    };
    let out = args.out.clone();
    let device = args.device.device;
    let json = match dispatch(device, EvalJob { args, options })?? {
        Report::Shapes(report) => {
            print_shapes(&report);
            serde_json::to_string_pretty(&report)?
        }
        Report::ClipScore(report) => {
            print_clip_score(&report);
            serde_json::to_string_pretty(&report)?
        }
    };
    if let Some(out) = out {
        mm_data::fs::atomic_write(&out, json.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

fn print_clip_score(report: &ClipScoreReport) {
    println!(
        "{:<10} {:>11} {:>11}",
        "guidance", "CLIP score", "mismatched"
    );
    for (w, own) in &report.clip_score_by_guidance {
        let wrong = report
            .mismatched_by_guidance
            .get(w)
            .copied()
            .unwrap_or(f64::NAN);
        println!("{w:<10} {own:>11.2} {wrong:>11.2}");
    }
    println!(
        "{:<10} {:>11.2} {:>11.2}",
        "real", report.real, report.real_mismatched
    );
    println!(
        "{} prompts x {} images, {} steps; CLIP score = 100 x max(cos, 0)",
        report.prompts.len(),
        report.sampling.samples_per_prompt,
        report.sampling.steps
    );
}

fn print_shapes(report: &DiffusionReport) {
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
}
