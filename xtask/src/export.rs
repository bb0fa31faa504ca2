//! `cargo xtask export clip --checkpoint DIR --out DIR`: write a model as an HF `CLIPModel`
//! folder that `transformers.CLIPModel.from_pretrained` loads.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use mm_core::{BackendJob, DeviceSpec};
use mm_vl::hf::{export_hf_clip, load_any_clip};

use crate::backend::dispatch;

#[derive(Clone, Copy, ValueEnum)]
enum Model {
    Clip,
}

/// Flags of `export`.
#[derive(Args)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    model: Model,
    /// A model folder of ours (a run's `final/` or a checkpoint) or an HF folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The HF folder to write.
    #[arg(long)]
    out: PathBuf,
}

struct ExportJob {
    checkpoint: PathBuf,
    out: PathBuf,
}

impl BackendJob for ExportJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let loaded = load_any_clip::<B::InnerBackend>(&self.checkpoint, &device)?;
        export_hf_clip(
            &loaded.model,
            &loaded.config,
            &loaded.processor,
            &loaded.tokenizer,
            &self.out,
        )?;
        Ok(())
    }
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let Model::Clip = args.model;
    dispatch(
        DeviceSpec::Cpu,
        ExportJob {
            checkpoint: args.checkpoint,
            out: args.out.clone(),
        },
    )??;
    println!("wrote HF CLIPModel folder {}", args.out.display());
    Ok(())
}
