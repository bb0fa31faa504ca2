//! `cargo xtask bench generate`: tokens per second of beam-5 and greedy captioning with the
//! default captioner's architecture (random weights, a 3,000-word vocabulary), beside
//! transformers' `generate()` on the very same model: the bench writes the model as an HF
//! folder that `xtask/bench/generate_reference.py` loads, and both caption the same 8 images
//! (pixels from a fixed formula), so both sides decode the same tokens.

use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use mm_core::BackendJob;
use mm_generate::caption::export_hf_captioner;
use mm_generate::caption::train::CaptionTrainConfig;
use mm_generate::decode::{EarlyStopping, GenerationConfig};
use mm_text::WordPieceTokenizer;
use mm_text::wordpiece::SPECIALS;

use super::{Figure, peak_rss_mib};

/// Images captioned per timed round.
pub const IMAGES: usize = 8;
/// Vocabulary of the bench model.
pub const VOCAB: usize = 3000;
/// Longest caption.
pub const MAX_NEW_TOKENS: usize = 20;

/// Where the bench model is written for the reference script to load.
pub fn model_dir() -> PathBuf {
    std::env::temp_dir().join("mm-bench-generate-model")
}

/// Pixel `i` of the bench images (the reference script uses the same formula).
pub fn pixel(i: usize) -> f32 {
    ((i * 7919) % 255) as f32 / 127.5 - 1.0
}

/// Times greedy and beam-5 captioning.
pub struct GenerateBench {
    /// Seconds to time each case.
    pub min_seconds: f64,
}

impl BackendJob for GenerateBench {
    type Output = anyhow::Result<Vec<Figure>>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        B::<A>::seed(&device, 0);
        let vocab: Vec<String> = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain((SPECIALS.len()..VOCAB).map(|i| format!("w{i}")))
            .collect();
        let tokenizer = WordPieceTokenizer::from_vocab(&vocab)?;
        let mut config = CaptionTrainConfig::default().model;
        config.decoder.vocab_size = VOCAB;
        config.decoder_start_token_id = tokenizer.cls;
        config.eos_token_id = tokenizer.sep;
        config.pad_token_id = tokenizer.pad;
        let model = config.init::<B<A>>(&device)?;
        export_hf_captioner(&model, &config, &tokenizer, &model_dir())?;
        let side = config.encoder.image_size;
        let per = 3 * side * side;
        let images: Vec<Tensor<B<A>, 4>> = (0..IMAGES)
            .map(|k| {
                let data: Vec<f32> = (k * per..(k + 1) * per).map(pixel).collect();
                Tensor::from_data(TensorData::new(data, [1, 3, side, side]), &device)
            })
            .collect();
        let mut out = Vec::new();
        for (key, beams) in [("greedy_tokens_per_s", 1), ("beam5_tokens_per_s", 5)] {
            let g = GenerationConfig {
                num_beams: beams,
                max_new_tokens: MAX_NEW_TOKENS,
                length_penalty: 1.0,
                early_stopping: EarlyStopping::False,
                ..config.generation()
            };
            let run = || -> anyhow::Result<usize> {
                let mut tokens = 0;
                for img in &images {
                    tokens += model.caption(img.clone(), &g, true)?[0].tokens.len();
                }
                Ok(tokens)
            };
            run()?;
            let start = std::time::Instant::now();
            let mut tokens = 0;
            let mut rounds = 0;
            while rounds < 2 || start.elapsed().as_secs_f64() < self.min_seconds {
                tokens += run()?;
                rounds += 1;
            }
            let rate = tokens as f64 / start.elapsed().as_secs_f64();
            eprintln!(
                "{key}: {:.1} tokens per caption",
                tokens as f64 / (rounds * IMAGES) as f64
            );
            out.push(Figure::higher_is_better(key, rate));
        }
        if let Some(mib) = peak_rss_mib() {
            out.push(Figure::lower_is_better("peak_rss_mib", mib));
        }
        Ok(out)
    }
}
