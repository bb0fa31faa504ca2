//! `cargo xtask eval caption --checkpoint DIR [--test-source NAME=MANIFEST[:SPLIT]]
//! [--max-new-tokens N] [--source-words [--source NAME=MANIFEST[:SPLIT]]] [--examples N]
//! [--out FILE]`: greedy vs beam 3 vs beam 5 on the held-out images
//! (BLEU-1..4, CIDEr-D, exact match; all images and per set), and each beam decoding set
//! against greedy decoding image by image (`against_greedy`: mean per-image CIDEr-D difference,
//! wins, losses, a 95% bootstrap interval). DIR is a captioner folder: a
//! run's `final/`, or a transformers `VisionEncoderDecoderModel` (ViT + BERT) folder.
//! `--source-words` decodes each test set with only the word pieces of the training
//! captions of the source of the same name (`suppress_tokens`: all the others).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_generate::caption::eval::{
    CaptionReport, SourceSuppression, evaluate_captioner, tokens_outside,
};
use mm_generate::caption::{CaptionSet, load_hf_captioner};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{caption_sources, print_caption_report, source_captions};

/// Flags of `eval caption`.
#[derive(Args)]
pub struct CaptionEvalArgs {
    /// A captioner folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// A test set, `NAME=MANIFEST[:SPLIT]` (repeatable; default: the held-out stamps, the
    /// Twitter emoji and easy-VQA's test images).
    #[arg(long = "test-source", value_name = "NAME=MANIFEST[:SPLIT]")]
    test_sources: Vec<String>,
    /// Longest caption in tokens (default: what the decoder's positions allow).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Decode each test set with only the word pieces of the captions of the training source
    /// of the same name (and the end token); a test set with no such source decodes freely.
    #[arg(long)]
    source_words: bool,
    /// A training source whose captions give `--source-words` its words, `NAME=MANIFEST[:SPLIT]`
    /// (repeatable; default: the default training sources of `train caption`).
    #[arg(
        long = "source",
        value_name = "NAME=MANIFEST[:SPLIT]",
        requires = "source_words"
    )]
    sources: Vec<String>,
    /// Images per test set whose captions the report lists (`examples`).
    #[arg(long, default_value_t = 4)]
    examples: usize,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: CaptionEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<CaptionReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let loaded = load_hf_captioner::<B::InnerBackend>(&a.checkpoint, &device)?;
        let test = CaptionSet::load(&caption_sources(&a.test_sources, true)?, &loaded.processor)?;
        let mut generation = loaded.generation.clone();
        generation.max_new_tokens = a
            .max_new_tokens
            .unwrap_or(loaded.config.decoder.max_position_embeddings - 1);
        let mut suppress = SourceSuppression::new();
        if a.source_words {
            for source in caption_sources(&a.sources, false)? {
                let captions = source_captions(&source)?;
                let outside =
                    tokens_outside(&loaded.tokenizer, &captions, generation.eos_token_id)?;
                println!(
                    "{}: {} captions, decoding with {} of {} tokens",
                    source.name,
                    captions.len(),
                    loaded.tokenizer.vocab_size() - outside.len(),
                    loaded.tokenizer.vocab_size()
                );
                suppress.insert(source.name, outside);
            }
            for name in test.sources.iter().filter(|n| !suppress.contains_key(*n)) {
                println!("{name}: no training source of this name, decoding with every token");
            }
        }
        Ok(evaluate_captioner(
            &loaded.model,
            &loaded.tokenizer,
            &test,
            &generation,
            &suppress,
            a.examples,
            &device,
        )?)
    }
}

/// Runs `eval caption`.
pub fn run(args: CaptionEvalArgs) -> Result<()> {
    let out = args.out.clone();
    let device = args.device.device;
    let report = dispatch(device, EvalJob { args })??;
    print_caption_report(&report, out.as_deref())
}
