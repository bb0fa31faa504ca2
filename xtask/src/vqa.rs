//! `cargo xtask vqa --model DIR --image P --question "..." [--top 5] [--json]`: the most
//! probable answers to a question about an image, with their probabilities. DIR is any VQA
//! folder: the two-tower model's, a ViLT's, or a transformers `ViltForQuestionAnswering`
//! (images are resized to its square `image_size`).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_vl::vqa::{AnyVqa, ScoredAnswer};

use crate::backend::dispatch;
use crate::common::DeviceArg;

/// Flags of `vqa`.
#[derive(Args)]
pub struct VqaArgs {
    /// A VQA model folder.
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
        let model = AnyVqa::<B::InnerBackend>::load(&a.model, &device)?;
        let image = mm_vision::load_image(&a.image)?;
        Ok(model.ask(&image, &a.question, a.top, &device)?)
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
