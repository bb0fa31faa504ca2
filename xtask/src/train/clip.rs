//! `cargo xtask train clip`: contrastive training from a JSON config under `configs/`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::{BackendJob, replicas};
use mm_data::manifest::{ImageCaption, Manifest};
use mm_text::ClipTokenizer;
use mm_vision::ClipImageProcessor;
use mm_vl::data::ImageTextSet;
use mm_vl::train::{ClipTrainConfig, RunOptions, train};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags};
use crate::common::{Role, image_caption_sources, load_config_with_overrides, workspace_root};

/// Flags of `train clip`.
#[derive(Args)]
pub struct ClipTrainArgs {
    #[command(flatten)]
    run: RunFlags,
    /// Training data, `NAME|MANIFEST.jsonl[:SPLIT]`, repeatable: emoji (names), emoji-enriched
    /// (names in CLIP-style captions), stamps, or a manifest.
    #[arg(long, default_value = "emoji")]
    data: Vec<String>,
    /// Folder for checkpoints and the final model.
    #[arg(long, default_value = "runs/clip")]
    run_dir: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

struct TrainJob {
    config: ClipTrainConfig,
    manifest: Manifest<ImageCaption>,
    run_dir: PathBuf,
    resume: bool,
    devices: usize,
}

impl BackendJob for TrainJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let manifest = self.manifest;
        let processor = ClipImageProcessor::clip(self.config.model.vision_config.image_size as u32);
        let data = ImageTextSet::load(&manifest, &processor, None)?;
        report_skipped(&data);
        println!(
            "training on {} image-caption records from {}",
            data.len(),
            manifest.path.display()
        );
        let run = RunOptions {
            resume: self.resume,
            ..RunOptions::new(&self.run_dir)
        };
        let devices = replicas(&device, self.devices);
        train::<B>(
            &self.config,
            &data,
            &ClipTokenizer::bundled(),
            &run,
            &devices,
        )?;
        println!("final model: {}", self.run_dir.join("final").display());
        Ok(())
    }
}

/// Prints how many records were skipped and the first few reasons.
pub fn report_skipped(data: &ImageTextSet) {
    if data.skipped.is_empty() {
        return;
    }
    eprintln!(
        "skipped {} record(s) whose image could not be used:",
        data.skipped.len()
    );
    for s in data.skipped.iter().take(5) {
        eprintln!("  {}", s.reason);
    }
}

/// Runs `train clip`.
pub fn run(args: ClipTrainArgs) -> Result<()> {
    let config_path = args
        .run
        .config
        .clone()
        .unwrap_or_else(|| workspace_root().join("configs/clip-emoji.json"));
    let value = load_config_with_overrides(&config_path, &args.run.overrides)?;
    let config: ClipTrainConfig = serde_json::from_value(value).with_context(|| {
        format!(
            "config {} does not describe a CLIP training run",
            config_path.display()
        )
    })?;
    if let Err(e) = config.model.validate() {
        bail!("config {}: {e}", config_path.display());
    }
    if let Err(e) = config.train.augment.validate() {
        bail!("config {}: train.{e}", config_path.display());
    }
    let manifest = image_caption_sources(&args.data, Role::Train)?;
    let device = args.device.device;
    let job = TrainJob {
        config,
        manifest,
        run_dir: args.run_dir,
        resume: args.run.resume,
        devices: args.devices.devices as usize,
    };
    dispatch(device, job)?
}
