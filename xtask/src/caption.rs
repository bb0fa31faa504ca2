//! `cargo xtask caption --model DIR --image P [--beams N] [--length-penalty X]
//! [--early-stopping true|false|never] [--max-new-tokens N] [--num-return N]
//! [--no-repeat-ngram N] [--words-from MANIFEST[:SPLIT]] [--mbr]
//! [--sample --temperature T --top-k K --top-p P --seed S] [--no-cache] [--json]`: captions of
//! an image. DIR is a captioner folder: a run's `final/` or a transformers
//! `VisionEncoderDecoderModel` (ViT + BERT) folder; its `generation_config.json` gives the
//! defaults (`suppress_tokens` included), the flags override them.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_generate::caption::eval::{Finished, mbr_first, tokens_outside};
use mm_generate::caption::load_hf_captioner;
use mm_generate::decode::EarlyStopping;
use mm_generate::decode::rerank::summed_log_prob;
use serde::Serialize;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{parse_caption_source, source_captions};

/// Flags of `caption`.
#[derive(Args)]
pub struct CaptionArgs {
    /// A captioner folder.
    #[arg(long)]
    model: PathBuf,
    /// The image.
    #[arg(long)]
    image: PathBuf,
    /// Beams (1: greedy, or sampling with --sample).
    #[arg(long)]
    beams: Option<usize>,
    /// A finished caption scores its summed log-probability / length^X.
    #[arg(long)]
    length_penalty: Option<f32>,
    /// When beam search stops: true, false or never.
    #[arg(long)]
    early_stopping: Option<EarlyStopping>,
    /// Longest caption in tokens (default: the folder's, else what the positions allow).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Captions returned, best first (at most --beams).
    #[arg(long, default_value_t = 1)]
    num_return: usize,
    /// No n-gram of this size twice in a caption.
    #[arg(long)]
    no_repeat_ngram: Option<usize>,
    /// Write only the word pieces of this image-caption manifest's captions (of SPLIT, when
    /// given) and the end token: every other token is added to `suppress_tokens`.
    #[arg(long, value_name = "MANIFEST[:SPLIT]")]
    words_from: Option<String>,
    /// Rerank all --beams finished captions by minimum Bayes risk (each one's n-gram F1
    /// against the others, weighted by their probabilities) and return the first --num-return
    /// of that order.
    #[arg(long)]
    mbr: bool,
    /// Sample instead of taking the most probable token.
    #[arg(long)]
    sample: bool,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sample among the K most probable tokens (0: all).
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    /// Sample among the most probable tokens whose probability reaches P.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Recompute every step over the whole caption instead of using the key/value cache.
    #[arg(long)]
    no_cache: bool,
    /// Print `{"captions": [{"text", "tokens", "score"}]}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
}

/// One caption as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct CaptionOut {
    text: String,
    tokens: Vec<u32>,
    score: f32,
    #[serde(skip)]
    log_prob: f64,
}

struct CaptionJob {
    args: CaptionArgs,
}

impl BackendJob for CaptionJob {
    type Output = Result<Vec<CaptionOut>>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = &self.args;
        let loaded = load_hf_captioner::<B::InnerBackend>(&a.model, &device)?;
        let mut g = loaded.generation.clone();
        if let Some(b) = a.beams {
            g.num_beams = b;
        }
        if let Some(x) = a.length_penalty {
            g.length_penalty = x;
        }
        if let Some(x) = a.early_stopping {
            g.early_stopping = x;
        }
        if let Some(x) = a.no_repeat_ngram {
            g.no_repeat_ngram_size = x;
        }
        if let Some(spec) = &a.words_from {
            let source = parse_caption_source(&format!("words={spec}"))?;
            let captions = source_captions(&source)?;
            let outside = tokens_outside(&loaded.tokenizer, &captions, g.eos_token_id)?;
            g.suppress_tokens.extend(outside);
        }
        let positions = loaded.config.decoder.max_position_embeddings - 1;
        g.max_new_tokens = a.max_new_tokens.unwrap_or(g.max_new_tokens.min(positions));
        g.num_return_sequences = a.num_return;
        if a.mbr {
            if g.num_beams < 2 || a.num_return == 0 || a.num_return > g.num_beams {
                anyhow::bail!(
                    "--mbr reranks the finished captions of beam search: it needs --beams of 2 or more and --num-return from 1 to --beams (beams {}, num-return {})",
                    g.num_beams,
                    a.num_return
                );
            }
            g.num_return_sequences = g.num_beams;
        }
        g.do_sample = a.sample;
        g.temperature = a.temperature;
        g.top_k = a.top_k;
        g.top_p = a.top_p;
        g.seed = a.seed;
        let image = mm_vision::load_image(&a.image)?;
        let pixels = loaded.processor.preprocess(&image);
        let [c, s, _] = loaded.model.encoder.input_shape();
        let pixels = burn::tensor::Tensor::from_data(
            burn::tensor::TensorData::new(pixels, [1, c, s, s]),
            &device,
        );
        let hypotheses = loaded.model.caption(pixels, &g, !a.no_cache)?;
        let mut captions = hypotheses
            .into_iter()
            .map(|h| {
                Ok(CaptionOut {
                    text: loaded.tokenizer.decode(&h.tokens)?,
                    log_prob: summed_log_prob(&h, g.length_penalty),
                    tokens: h.tokens,
                    score: h.score,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if a.mbr {
            let finished: Vec<Finished> = captions
                .iter()
                .map(|c| Finished {
                    text: c.text.clone(),
                    log_prob: c.log_prob,
                })
                .collect();
            let mut slots: Vec<Option<CaptionOut>> = captions.into_iter().map(Some).collect();
            captions = mbr_first(&finished)
                .into_iter()
                .take(a.num_return)
                .filter_map(|i| slots[i].take())
                .collect();
        }
        Ok(captions)
    }
}

/// Runs `caption`.
pub fn run(args: CaptionArgs) -> Result<()> {
    let json = args.json;
    let device = args.device.device;
    let captions = dispatch(device, CaptionJob { args })??;
    if json {
        println!("{}", serde_json::json!({ "captions": captions }));
    } else {
        for c in &captions {
            println!("{:>9.4}  {}", c.score, c.text);
        }
    }
    Ok(())
}
