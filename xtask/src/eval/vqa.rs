//! `cargo xtask eval vqa --checkpoint DIR [--train FILE] [--data FILE] [--out FILE]`: accuracy
//! overall and per answer type, beside the question-only baseline (fitted on the training
//! questions) and the same model with every image blanked.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::{BackendJob, dispatch};
use mm_text::ClipTokenizer;
use mm_vl::vqa::{QuestionOnly, VqaReport, VqaSet, evaluate_vqa, load_vqa};

use crate::common::DeviceArg;
use crate::train::{print_vqa_report, vqa_manifest};

/// Flags of `eval vqa`.
#[derive(Args)]
pub struct VqaEvalArgs {
    /// A trained model folder (a run's `final/`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Test questions (default: datasets/vqa/test.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Training questions, for the question-only baseline (default: datasets/vqa/train.jsonl).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: VqaEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<VqaReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let (model, config) = load_vqa::<B::InnerBackend>(&a.checkpoint, &device)?;
        let tokenizer = ClipTokenizer::bundled();
        let context = config.model.text.max_position_embeddings;
        let size = config.model.vision.image_size;
        let train = VqaSet::load(&vqa_manifest(a.train, "train")?, &tokenizer, context, size)?;
        let test = VqaSet::load(&vqa_manifest(a.data, "test")?, &tokenizer, context, size)?;
        let baseline = QuestionOnly::fit(&train);
        Ok(evaluate_vqa(
            &model,
            &config.model.answers,
            &baseline,
            &test,
            &device,
        ))
    }
}

/// Runs `eval vqa`.
pub fn run(args: VqaEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let report = dispatch(device, EvalJob { args })??;
    print_vqa_report(&report, out.as_deref())
}
