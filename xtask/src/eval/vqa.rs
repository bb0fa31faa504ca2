//! `cargo xtask eval vqa --checkpoint DIR [--train FILE] [--data FILE] [--out FILE]`: accuracy
//! overall and per answer type, beside the question-only baseline (fitted on the training
//! questions) and the same model with every image blanked. DIR is any VQA folder: the
//! two-tower model's, a ViLT's from `train vilt`, or a transformers `ViltForQuestionAnswering`.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_vl::vqa::{AnyVqa, QuestionOnly, VqaReport};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{print_vqa_report, vqa_manifest};

/// Flags of `eval vqa`.
#[derive(Args)]
pub struct VqaEvalArgs {
    /// A VQA model folder (a run's `final/`, or an HF ViltForQuestionAnswering folder).
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
        let model = AnyVqa::<B::InnerBackend>::load(&a.checkpoint, &device)?;
        eprintln!("{} model, {} answers", model.kind(), model.answers().len());
        let train = model.load_questions(&vqa_manifest(a.train, "train")?)?;
        let test = model.load_questions(&vqa_manifest(a.data, "test")?)?;
        Ok(model.evaluate(&QuestionOnly::fit(&train), &test, &device))
    }
}

/// Runs `eval vqa`.
pub fn run(args: VqaEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let report = dispatch(device, EvalJob { args })??;
    print_vqa_report(&report, out.as_deref())
}
