//! `cargo xtask classify --model DIR --image PATH --labels "dog,cat,bird" [--templates FILE]`:
//! zero-shot classification, labels ranked with probabilities.

use std::path::PathBuf;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_vl::hf::load_any_clip;
use mm_vl::zeroshot::SINGLE_TEMPLATE;

/// Flags of `classify`.
#[derive(Args)]
pub struct ClassifyArgs {
    /// An HF CLIP folder or a model folder of ours.
    #[arg(long)]
    model: PathBuf,
    /// The image to classify.
    #[arg(long)]
    image: PathBuf,
    /// Comma-separated class names.
    #[arg(long)]
    labels: String,
    /// A file of prompt templates, one per line, each with `{}` for the label (an ensemble).
    #[arg(long)]
    templates: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct ClassifyJob {
    args: ClassifyArgs,
    templates: Vec<String>,
}

impl BackendJob for ClassifyJob {
    type Output = Result<Vec<(String, f32)>>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let loaded = load_any_clip::<B::InnerBackend>(&self.args.model, &device)?;
        let labels: Vec<String> = self.args.labels.split(',').map(str::to_string).collect();
        let templates: Vec<&str> = self.templates.iter().map(String::as_str).collect();
        Ok(loaded.classify(&self.args.image, &labels, &templates)?)
    }
}

/// Runs `classify`.
pub fn run(args: ClassifyArgs) -> Result<()> {
    let templates: Vec<String> = match &args.templates {
        Some(path) => crate::eval::read_templates(path)?,
        None => SINGLE_TEMPLATE.iter().map(|t| t.to_string()).collect(),
    };
    let device = args.device.device;
    let ranked = dispatch(device, ClassifyJob { args, templates })??;
    for (label, p) in ranked {
        println!("{label:<24} {:6.2}%", 100.0 * p);
    }
    Ok(())
}
