//! `cargo xtask train vqa`: the two-tower VQA model on easy-VQA's training questions (or a
//! question-answer manifest of your own), then scored on the test questions beside the
//! question-only baseline and the image-blanked model.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::train::{RunOptions, append_eval};
use mm_core::{BackendJob, replicas};
use mm_text::ClipTokenizer;
use mm_vl::vqa::{QuestionOnly, VqaReport, VqaSet, VqaTrainConfig, evaluate_vqa, train_vqa};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};

/// Flags of `train vqa`.
#[derive(Args)]
pub struct VqaTrainArgs {
    #[command(flatten)]
    run: RunFlags,
    /// Training questions (default: datasets/vqa/train.jsonl from `data fetch vqa`).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Test questions (default: datasets/vqa/test.jsonl).
    #[arg(long)]
    test: Option<PathBuf>,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Folder for checkpoints, metrics and the final model (default runs/vqa).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

/// A question-answer manifest: `given`, else `datasets/vqa/{split}.jsonl`, checked to exist.
pub fn vqa_manifest(given: Option<PathBuf>, split: &str) -> Result<PathBuf> {
    let path = given.unwrap_or_else(|| datasets_dir().join(format!("vqa/{split}.jsonl")));
    if !path.exists() {
        bail!(
            "{} not found: run `cargo xtask data fetch vqa` first (or pass a question-answer manifest)",
            path.display()
        );
    }
    Ok(path)
}

/// Prints a VQA report and writes it to `out` as JSON.
pub fn print_vqa_report(report: &VqaReport, out: Option<&Path>) -> Result<()> {
    println!(
        "{:<8} {:>9} {:>14} {:>12} {:>9}",
        "type", "accuracy", "question-only", "blank image", "fraction"
    );
    let row = |name: &str, a: f64, q: f64, b: f64, f: f64| {
        println!(
            "{name:<8} {:>8.1}% {:>13.1}% {:>11.1}% {:>8.1}%",
            100.0 * a,
            100.0 * q,
            100.0 * b,
            100.0 * f
        )
    };
    for (t, a) in &report.by_type {
        row(
            t,
            a.accuracy,
            a.question_only_accuracy,
            a.blank_image_accuracy,
            a.fraction,
        );
    }
    row(
        "all",
        report.accuracy,
        report.question_only_accuracy,
        report.blank_image_accuracy,
        1.0,
    );
    println!("{} test questions", report.n_test);
    if let Some(out) = out {
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(report)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

struct VqaJob {
    config: VqaTrainConfig,
    train: VqaSet,
    test: VqaSet,
    run: RunOptions,
    devices: usize,
}

impl BackendJob for VqaJob {
    type Output = Result<VqaReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let devices = replicas(&device, self.devices);
        let baseline = QuestionOnly::fit(&self.train);
        let (model, answers) = train_vqa::<B>(&self.config, self.train, &self.run, &devices)?;
        Ok(evaluate_vqa(
            &model, &answers, &baseline, &self.test, &device,
        ))
    }
}

/// Runs `train vqa`.
pub fn run(args: VqaTrainArgs) -> Result<()> {
    let mut config = args
        .run
        .settings(VqaTrainConfig::default(), "a VQA training run")?;
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    let tokenizer = ClipTokenizer::bundled();
    let context = config.model.text.max_position_embeddings;
    let size = config.model.vision.image_size;
    eprintln!("loading the questions and decoding their images...");
    let train = VqaSet::load(
        &vqa_manifest(args.train, "train")?,
        &tokenizer,
        context,
        size,
    )?;
    let test = VqaSet::load(&vqa_manifest(args.test, "test")?, &tokenizer, context, size)?;
    eprintln!(
        "{} training questions on {} images; {} test questions on {} images",
        train.items.len(),
        train.images.len(),
        test.items.len(),
        test.images.len()
    );
    let run_dir = args.run_dir.unwrap_or_else(|| PathBuf::from("runs/vqa"));
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&run_dir)
    };
    let job = VqaJob {
        config,
        train,
        test,
        run,
        devices: args.devices.devices as usize,
    };
    let report = dispatch(args.device.device, job)??;
    append_eval(
        &run_dir.join("metrics.jsonl"),
        &serde_json::to_value(&report)?,
    )?;
    println!("final model: {}", run_dir.join("final").display());
    print_vqa_report(&report, args.out.as_deref())
}
