//! `cargo xtask eval clip --checkpoint DIR`: retrieval and zero-shot figures on the test set,
//! beside the same figures for the untrained model.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_text::ClipTokenizer;
use mm_vl::datasets::EMOJI_TEMPLATES;
use mm_vl::eval::{EvalReport, evaluate};

use super::trained_untrained_and_data;
use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::common::{Role, resolve_data};

/// Flags of `eval clip`.
#[derive(Args)]
pub struct ClipEvalArgs {
    /// A model folder: a run's `final/` or one of its checkpoints.
    #[arg(long, default_value = "runs/clip/final")]
    checkpoint: PathBuf,
    /// Dataset name (emoji: its Twitter-style test set) or a manifest .jsonl.
    #[arg(long, default_value = "emoji")]
    data: String,
    /// Also write the figures as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the untrained baseline's initialization.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    checkpoint: PathBuf,
    manifest: PathBuf,
    seed: u64,
}

impl BackendJob for EvalJob {
    type Output = Result<(EvalReport, EvalReport)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, untrained, data) =
            trained_untrained_and_data::<B>(&self.checkpoint, &self.manifest, self.seed, &device)?;
        let tokenizer = ClipTokenizer::bundled();
        let trained = evaluate(&model, &tokenizer, &data, EMOJI_TEMPLATES, 256)?;
        let baseline = evaluate(&untrained, &tokenizer, &data, EMOJI_TEMPLATES, 256)?;
        Ok((trained, baseline))
    }
}

/// Runs `eval clip`.
pub fn run(args: ClipEvalArgs) -> Result<()> {
    let manifest = resolve_data(&args.data, Role::Test)?;
    let device = args.device.device;
    let job = EvalJob {
        checkpoint: args.checkpoint.clone(),
        manifest: manifest.clone(),
        seed: args.seed,
    };
    let (trained, baseline) = dispatch(device, job)??;
    let n = trained.n_test as f64;
    println!(
        "evaluated {} on {} ({} test images)",
        args.checkpoint.display(),
        manifest.display(),
        trained.n_test
    );
    println!(
        "{:<26} {:>9} {:>10} {:>9}",
        "metric", "trained", "untrained", "chance"
    );
    let rows = [
        ("image->text R@1", trained.i2t_r1, baseline.i2t_r1, 1.0 / n),
        ("image->text R@5", trained.i2t_r5, baseline.i2t_r5, 5.0 / n),
        (
            "image->text R@10",
            trained.i2t_r10,
            baseline.i2t_r10,
            10.0 / n,
        ),
        ("text->image R@1", trained.t2i_r1, baseline.t2i_r1, 1.0 / n),
        ("text->image R@5", trained.t2i_r5, baseline.t2i_r5, 5.0 / n),
        (
            "text->image R@10",
            trained.t2i_r10,
            baseline.t2i_r10,
            10.0 / n,
        ),
        (
            "zero-shot top-1 (1 prompt)",
            trained.zeroshot_top1_single,
            baseline.zeroshot_top1_single,
            f64::NAN,
        ),
        (
            "zero-shot top-1 (ensemble)",
            trained.zeroshot_top1_ensemble,
            baseline.zeroshot_top1_ensemble,
            f64::NAN,
        ),
    ];
    for (name, t, b, c) in rows {
        let chance = if c.is_nan() {
            "-".to_string()
        } else {
            format!("{:.2}%", 100.0 * c)
        };
        println!(
            "{name:<26} {:>8.2}% {:>9.2}% {:>9}",
            100.0 * t,
            100.0 * b,
            chance
        );
    }
    // A run's `final/` or checkpoint: its evaluation joins the run's log.
    let metrics = args
        .checkpoint
        .parent()
        .map(|run| run.join("metrics.jsonl"));
    if let Some(metrics) = metrics.filter(|m| m.is_file()) {
        mm_core::train::append_eval(&metrics, &serde_json::to_value(&trained)?)?;
    }
    if let Some(out) = args.out {
        let mut json = serde_json::to_value(&trained)?;
        json["untrained"] = serde_json::to_value(&baseline)?;
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
