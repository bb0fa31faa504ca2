//! `cargo xtask vqa --model DIR --image P --question "..." [--top 5] [--json]`: the most
//! probable answers to a question about an image, with their probabilities.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::{BackendJob, dispatch};
use mm_vl::vqa::{ScoredAnswer, answer_question, load_vqa};

use crate::common::DeviceArg;

/// Flags of `vqa`.
#[derive(Args)]
pub struct VqaArgs {
    /// A trained VQA folder (a run's `final/`).
    #[arg(long)]
    model: PathBuf,
    /// The image.
    #[arg(long)]
    image: PathBuf,
    /// The question.
    #[arg(long)]
    question: String,
    /// How many answers to list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print `{"answers": [{"answer", "probability"}]}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
}

struct AskJob {
    args: VqaArgs,
}

impl BackendJob for AskJob {
    type Output = Result<Vec<ScoredAnswer>>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = &self.args;
        let (model, config) = load_vqa::<B::InnerBackend>(&a.model, &device)?;
        let image = mm_vision::load_image(&a.image)?;
        Ok(answer_question(
            &model,
            &config,
            &image,
            &a.question,
            a.top,
            &device,
        )?)
    }
}

/// Runs `vqa`.
pub fn run(args: VqaArgs) -> Result<()> {
    let json = args.json;
    let device = args.device.device;
    let answers = dispatch(device, AskJob { args })??;
    if json {
        println!("{}", serde_json::json!({ "answers": answers }));
    } else {
        for a in &answers {
            println!("{:>6.1}%  {}", 100.0 * a.probability, a.answer);
        }
    }
    Ok(())
}
