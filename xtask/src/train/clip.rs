//! `cargo xtask train clip`: contrastive training from a JSON config under `configs/`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mm_core::manifest::Manifest;
use mm_core::{BackendJob, dispatch};
use mm_text::ClipTokenizer;
use mm_vision::ClipImageProcessor;
use mm_vl::data::ImageTextSet;
use mm_vl::train::{ClipTrainConfig, StepReport, TrainObserver, train};

use crate::common::DeviceArg;
use crate::common::{Role, load_config_with_overrides, resolve_data, workspace_root};

/// Flags of `train clip`.
#[derive(Args)]
pub struct ClipTrainArgs {
    /// Training config (JSON); defaults to configs/clip-emoji.json.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config field, e.g. `--set train.steps=200 --set model.vision_config.hidden_size=64`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Dataset name (emoji) or a manifest .jsonl.
    #[arg(long, default_value = "emoji")]
    data: String,
    /// Folder for checkpoints and the final model.
    #[arg(long, default_value = "runs/clip")]
    run_dir: PathBuf,
    /// Continue from the run folder's latest checkpoint.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    device: DeviceArg,
}

struct Progress {
    bar: ProgressBar,
}

impl TrainObserver for Progress {
    fn on_start(&mut self, start: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(start as u64);
        self.bar.reset_eta();
    }

    fn on_step(&mut self, r: &StepReport) -> ControlFlow<()> {
        self.bar.set_position(r.step as u64);
        self.bar.set_message(format!(
            "loss {:.4}  lr {:.2e}  scale {:.1}  {:.0} pairs/s",
            r.loss, r.lr, r.logit_scale, r.samples_per_sec
        ));
        if r.step.is_multiple_of(50) || r.step == r.total_steps {
            tracing::info!(step = r.step, loss = r.loss, lr = r.lr, "train");
        }
        ControlFlow::Continue(())
    }

    fn on_checkpoint(&mut self, step: usize, dir: &Path) {
        self.bar
            .println(format!("checkpoint at step {step}: {}", dir.display()));
    }
}

struct TrainJob {
    config: ClipTrainConfig,
    manifest: PathBuf,
    run_dir: PathBuf,
    resume: bool,
}

impl BackendJob for TrainJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let manifest = Manifest::read(&self.manifest)?;
        let processor = ClipImageProcessor::clip(self.config.model.vision_config.image_size as u32);
        let data = ImageTextSet::load(&manifest, &processor, None)?;
        report_skipped(&data);
        println!(
            "training on {} image-caption records from {}",
            data.len(),
            self.manifest.display()
        );
        let bar = ProgressBar::new(self.config.train.steps as u64).with_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        let mut progress = Progress { bar };
        let tokenizer = ClipTokenizer::bundled();
        std::fs::create_dir_all(&self.run_dir)
            .with_context(|| format!("cannot create {}", self.run_dir.display()))?;
        let config_path = self.run_dir.join("train-config.json");
        std::fs::write(&config_path, serde_json::to_string_pretty(&self.config)?)?;
        train::<B>(
            &self.config,
            &data,
            &tokenizer,
            &self.run_dir,
            self.resume,
            &device,
            &mut progress,
        )?;
        progress.bar.finish();
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
        .config
        .unwrap_or_else(|| workspace_root().join("configs/clip-emoji.json"));
    let value = load_config_with_overrides(&config_path, &args.overrides)?;
    let config: ClipTrainConfig = serde_json::from_value(value).with_context(|| {
        format!(
            "config {} does not describe a CLIP training run",
            config_path.display()
        )
    })?;
    if let Err(e) = config.model.validate() {
        bail!("config {}: {e}", config_path.display());
    }
    let manifest = resolve_data(&args.data, Role::Train)?;
    let device = args.device.device;
    let job = TrainJob {
        config,
        manifest,
        run_dir: args.run_dir,
        resume: args.resume,
    };
    dispatch(device, job)?
}
