//! `cargo xtask eval vilt --checkpoint DIR [--captions FILE]`: what a pre-trained ViLT (ITM and
//! MLM heads) learned, on the held-out captioned images: ITM AUC against hard negatives and
//! masked-word accuracy with the image beside a blank one.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_text::WordPieceTokenizer;
use mm_vl::vilt::eval::{PretrainReport, article_ids, evaluate_pretraining};
use mm_vl::vilt::load_hf_vilt;
use mm_vl::vilt::pretrain::CaptionSet;
use mm_vl::vilt::train::VILT_MEAN_STD;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{captions_manifest, print_pretrain_report};

/// Flags of `eval vilt`.
#[derive(Args)]
pub struct ViltEvalArgs {
    /// A ViLT folder with ITM and MLM heads (e.g. runs/vilt/pretrain/final).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Captioned images; the `test` split is scored (default: datasets/vqa/captions.jsonl).
    #[arg(long)]
    captions: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: ViltEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<PretrainReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let loaded = load_hf_vilt::<B::InnerBackend>(&a.checkpoint, &device)?;
        if loaded.model.itm.is_none() || loaded.model.mlm.is_none() {
            bail!(
                "{}: this ViLT lacks an image-text matching or masked-language head",
                a.checkpoint.display()
            );
        }
        let tokenizer = WordPieceTokenizer::from_folder(&a.checkpoint)?;
        let c = &loaded.config;
        let set = CaptionSet::from_manifest(
            &captions_manifest(a.captions)?,
            "test",
            &tokenizer,
            c.image_size,
            c.max_position_embeddings,
            VILT_MEAN_STD,
        )?;
        Ok(evaluate_pretraining(
            &loaded.model,
            &set,
            tokenizer.mask,
            article_ids(&tokenizer),
            0,
            &device,
        )?)
    }
}

/// Runs `eval vilt`.
pub fn run(args: ViltEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let report = dispatch(device, EvalJob { args })??;
    print_pretrain_report(&report);
    if let Some(out) = out {
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
