//! `cargo xtask eval info --checkpoint DIR`: the InfoNCE lower bound `log N - L` on the mutual
//! information between images and captions, for a trained CLIP on its test set, beside the
//! untrained model.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_core::info::infonce::InfoNceBound;
use mm_text::ClipTokenizer;
use mm_vl::info::clip_infonce_bound;

use super::trained_untrained_and_data;
use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::common::{Role, resolve_data};

/// Flags of `eval info`.
#[derive(Args)]
pub struct InfoEvalArgs {
    /// A model folder: a run's `final/` or one of its checkpoints.
    #[arg(long, default_value = "runs/clip/final")]
    checkpoint: PathBuf,
    /// Dataset name (emoji: its Twitter-style test set) or a manifest .jsonl.
    #[arg(long, default_value = "emoji")]
    data: String,
    /// Pairs per batch, N (the bound can show at most log N).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Seed of the random batches and of the untrained baseline.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write the figures as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct InfoJob {
    checkpoint: PathBuf,
    manifest: PathBuf,
    batch: usize,
    seed: u64,
}

impl BackendJob for InfoJob {
    type Output = Result<(InfoNceBound, InfoNceBound, usize)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, untrained, data) =
            trained_untrained_and_data::<B>(&self.checkpoint, &self.manifest, self.seed, &device)?;
        let tokenizer = ClipTokenizer::bundled();
        let trained = clip_infonce_bound(&model, &tokenizer, &data, self.batch, self.seed)?;
        let baseline = clip_infonce_bound(&untrained, &tokenizer, &data, self.batch, self.seed)?;
        Ok((trained, baseline, data.len()))
    }
}

/// Runs `eval info`.
pub fn run(args: InfoEvalArgs) -> Result<()> {
    let manifest = resolve_data(&args.data, Role::Test)?;
    let device = args.device.device;
    let job = InfoJob {
        checkpoint: args.checkpoint.clone(),
        manifest: manifest.clone(),
        batch: args.batch,
        seed: args.seed,
    };
    let (trained, baseline, n) = dispatch(device, job)??;
    println!(
        "InfoNCE bound I(image; caption) >= log N - L on {} ({n} pairs, {} batches of N = {})",
        manifest.display(),
        trained.batches,
        trained.batch
    );
    println!(
        "{:<28} {:>10} {:>10}",
        "figure (nats)", "trained", "untrained"
    );
    let rows = [
        (
            "loss image->text",
            trained.loss_x_to_y,
            baseline.loss_x_to_y,
        ),
        (
            "loss text->image",
            trained.loss_y_to_x,
            baseline.loss_y_to_x,
        ),
        (
            "bound image->text",
            trained.bound_x_to_y,
            baseline.bound_x_to_y,
        ),
        (
            "bound text->image",
            trained.bound_y_to_x,
            baseline.bound_y_to_x,
        ),
        ("log N (ceiling)", trained.log_n, baseline.log_n),
    ];
    for (name, t, b) in rows {
        println!("{name:<28} {t:>10.3} {b:>10.3}");
    }
    println!(
        "best bound: {:.3} bits (trained) vs {:.3} bits (untrained)",
        trained.best_bits(),
        baseline.best_bits()
    );
    if let Some(out) = args.out {
        let json = serde_json::json!({ "trained": trained, "untrained": baseline, "pairs": n });
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
