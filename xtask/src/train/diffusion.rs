//! `cargo xtask train diffusion`: a pixel-space text-to-image UNet on easy-VQA's "a red
//! circle" images (32 px, one prompt held out), conditioned on the token states of a frozen
//! CLIP text tower (our emoji CLIP by default, or any HF CLIP folder), saved as a diffusers
//! pipeline folder. `--source NAME=MANIFEST[:SPLIT]` trains on image-caption manifests of
//! your own instead (the emoji set with its names, say).

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::train::RunOptions;
use mm_core::{BackendJob, replicas};
use mm_generate::caption::{CaptionSet, vit_processor};
use mm_generate::diffusion::text::TextConditioner;
use mm_generate::diffusion::train::{DiffusionTrainConfig, train_diffusion};

use super::caption::parse_source;
use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};

/// Flags of `train diffusion`.
#[derive(Args)]
pub struct DiffusionTrainArgs {
    #[command(flatten)]
    run: RunFlags,
    /// A training set, `NAME=MANIFEST[:SPLIT]` (repeatable; default: easy-VQA's training
    /// images, `datasets/vqa/captions.jsonl:train`).
    #[arg(long = "source", value_name = "NAME=MANIFEST[:SPLIT]")]
    sources: Vec<String>,
    /// The CLIP whose text tower conditions the UNet: a folder of ours or an HF CLIP folder.
    #[arg(long, default_value = "runs/clip/final")]
    text_encoder: PathBuf,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Folder for checkpoints, metrics and the final pipeline (default runs/diffusion).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

struct DiffusionJob {
    config: DiffusionTrainConfig,
    train: CaptionSet,
    text_encoder: PathBuf,
    run: RunOptions,
    devices: usize,
}

impl BackendJob for DiffusionJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let clip = mm_vl::hf::load_any_clip::<B::InnerBackend>(&self.text_encoder, &device)
            .with_context(|| {
                format!(
                    "loading the text encoder {} (train one with `cargo xtask train clip`, or pass --text-encoder)",
                    self.text_encoder.display()
                )
            })?;
        let text = TextConditioner::new(
            clip.model.text_model,
            clip.config.text_config,
            clip.tokenizer,
        );
        let devices = replicas(&device, self.devices);
        train_diffusion::<B>(&self.config, self.train, text, &self.run, &devices)?;
        Ok(())
    }
}

/// Runs `train diffusion`.
pub fn run(args: DiffusionTrainArgs) -> Result<()> {
    let mut config = args
        .run
        .settings(DiffusionTrainConfig::default(), "a diffusion run")?;
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    let sources = if args.sources.is_empty() {
        let path = datasets_dir().join("vqa/captions.jsonl");
        anyhow::ensure!(
            path.exists(),
            "{} not found: run `cargo xtask data fetch vqa` first (or pass --source)",
            path.display()
        );
        vec![parse_source(&format!("shapes={}:train", path.display()))?]
    } else {
        args.sources
            .iter()
            .map(|s| parse_source(s))
            .collect::<Result<_>>()?
    };
    eprintln!("decoding the training images...");
    let train = CaptionSet::load(&sources, &vit_processor(config.image_size as u32))?;
    eprintln!(
        "training images: {} ({} held-out prompt(s): {})",
        train.len(),
        config.held_out.len(),
        config.held_out.join(", ")
    );
    for (path, reason) in train.skipped.iter().take(5) {
        eprintln!("skipped {}: {reason}", path.display());
    }
    let run_dir = args
        .run_dir
        .unwrap_or_else(|| PathBuf::from("runs/diffusion"));
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&run_dir)
    };
    let job = DiffusionJob {
        config,
        train,
        text_encoder: args.text_encoder,
        run,
        devices: args.devices.devices as usize,
    };
    dispatch(args.device.device, job)??;
    println!("final pipeline: {}", run_dir.join("final").display());
    Ok(())
}
