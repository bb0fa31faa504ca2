//! `cargo xtask embed --model DIR [--image PATH]... [--text TEXT]... [--json]`: CLIP features
//! of files and texts, as transformers' `get_image_features` / `get_text_features` give them.

use std::path::PathBuf;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mm_core::BackendJob;
use mm_vl::hf::load_any_clip;
use serde_json::json;

/// Flags of `embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// An HF CLIP folder or a model folder of ours.
    #[arg(long)]
    model: PathBuf,
    /// Image files to embed.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Texts to embed.
    #[arg(long = "text")]
    texts: Vec<String>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Scale embeddings to unit length.
    #[arg(long)]
    normalize: bool,
    /// Images or texts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

struct EmbedJob(EmbedArgs);

impl BackendJob for EmbedJob {
    type Output = Result<serde_json::Value>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.0;
        let loaded = load_any_clip::<B::InnerBackend>(&a.model, &device)?;
        let bar = if a.images.len() > a.batch {
            ProgressBar::new(a.images.len() as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} images [{eta}]").expect("template"),
        );
        let images = loaded.embed_image_files(&a.images, a.batch, a.normalize, |n| {
            bar.set_position(n as u64)
        })?;
        bar.finish_and_clear();
        let texts = loaded.embed_texts(&a.texts, a.batch, a.normalize)?;
        Ok(json!({
            "images": a.images.iter().zip(images).map(|(p, e)| json!({"path": p, "embedding": e})).collect::<Vec<_>>(),
            "texts": a.texts.iter().zip(texts).map(|(t, e)| json!({"text": t, "embedding": e})).collect::<Vec<_>>(),
        }))
    }
}

/// Runs `embed`.
pub fn run(args: EmbedArgs) -> Result<()> {
    if args.images.is_empty() && args.texts.is_empty() {
        bail!("nothing to embed: give --image PATH and/or --text TEXT");
    }
    let device = args.device.device;
    let as_json = args.json;
    let out = dispatch(device, EmbedJob(args))??;
    if as_json {
        println!("{out}");
        return Ok(());
    }
    for kind in ["images", "texts"] {
        for item in out[kind].as_array().expect("array") {
            let name = item.get("path").or_else(|| item.get("text")).expect("name");
            let e = item["embedding"].as_array().expect("embedding");
            let head: Vec<String> = e
                .iter()
                .take(4)
                .map(|v| format!("{:.4}", v.as_f64().unwrap_or(0.0)))
                .collect();
            println!("{name}: dim {} [{}, ...]", e.len(), head.join(", "));
        }
    }
    Ok(())
}
