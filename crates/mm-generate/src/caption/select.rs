//! Choosing beam search's `length_penalty` on validation images, as caption papers choose
//! their decoding settings: every candidate penalty decodes the validation set with 3 and 5
//! beams, and the one with the best mean CIDEr-D wins (ties keep the earlier candidate, so
//! list transformers' default 1.0 first). The choice goes into the model folder's
//! `generation_config.json`, where `caption`, `eval caption` and transformers read it; the
//! test images are never looked at.

use burn::tensor::backend::Backend;
use mm_text::WordPieceTokenizer;
use serde::{Deserialize, Serialize};

use super::data::CaptionSet;
use super::eval::{caption_set, reference_words, scores};
use super::hf::CaptionError;
use super::model::Captioner;
use crate::decode::GenerationConfig;
use crate::metrics::caption_words;

/// Validation CIDEr-D of one candidate penalty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PenaltyScore {
    /// The candidate `length_penalty`.
    pub length_penalty: f32,
    /// CIDEr-D of beam search with 3 beams.
    pub beam3: f64,
    /// CIDEr-D of beam search with 5 beams.
    pub beam5: f64,
}

/// What the validation sweep found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PenaltyChoice {
    /// The penalty with the best mean of the beam-3 and beam-5 CIDEr-D.
    pub chosen: f32,
    /// Greedy decoding's CIDEr-D on the same images, for comparison.
    pub greedy: f64,
    /// Every candidate, in the order tried.
    pub candidates: Vec<PenaltyScore>,
    /// Validation images.
    pub n: usize,
}

/// Decodes `validation` greedily and with 3 and 5 beams at each of `candidates` (settings
/// other than beams and penalty from `base`) and picks the penalty with the best mean CIDEr-D.
pub fn choose_length_penalty<B: Backend>(
    model: &Captioner<B>,
    tokenizer: &WordPieceTokenizer,
    validation: &CaptionSet,
    base: &GenerationConfig,
    candidates: &[f32],
    device: &B::Device,
) -> Result<PenaltyChoice, CaptionError> {
    if validation.is_empty() || candidates.is_empty() {
        return Err(CaptionError::Config(
            "choosing a length penalty needs validation images and at least one candidate".into(),
        ));
    }
    let references = reference_words(validation);
    let cider = |beams: usize, length_penalty: f32| -> Result<f64, CaptionError> {
        let config = GenerationConfig {
            num_beams: beams,
            length_penalty,
            num_return_sequences: 1,
            do_sample: false,
            ..base.clone()
        };
        let texts = caption_set(model, tokenizer, validation, &config, device)?;
        let words: Vec<Vec<String>> = texts.iter().map(|t| caption_words(t)).collect();
        Ok(scores(&words, &references)?.cider)
    };
    let greedy = cider(1, base.length_penalty)?;
    let mut scored = Vec::with_capacity(candidates.len());
    for &length_penalty in candidates {
        let score = PenaltyScore {
            length_penalty,
            beam3: cider(3, length_penalty)?,
            beam5: cider(5, length_penalty)?,
        };
        tracing::info!(
            length_penalty,
            beam3 = score.beam3,
            beam5 = score.beam5,
            "validation CIDEr-D"
        );
        scored.push(score);
    }
    Ok(PenaltyChoice {
        chosen: best_penalty(&scored),
        greedy,
        candidates: scored,
        n: validation.len(),
    })
}

/// The penalty with the highest mean of beam-3 and beam-5 CIDEr-D; the first of equals
/// (`scored` is not empty).
fn best_penalty(scored: &[PenaltyScore]) -> f32 {
    let mean = |s: &PenaltyScore| (s.beam3 + s.beam5) / 2.0;
    let mut best = &scored[0];
    for s in &scored[1..] {
        if mean(s) > mean(best) {
            best = s;
        }
    }
    best.length_penalty
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(length_penalty: f32, beam3: f64, beam5: f64) -> PenaltyScore {
        PenaltyScore {
            length_penalty,
            beam3,
            beam5,
        }
    }

    #[test]
    fn the_best_mean_wins_and_ties_keep_the_first() {
        let s = [
            score(1.0, 0.5, 0.5),
            score(2.0, 0.7, 0.4),
            score(3.0, 0.3, 0.4),
        ];
        assert_eq!(best_penalty(&s), 2.0);
        let tie = [score(1.0, 0.5, 0.5), score(2.0, 0.4, 0.6)];
        assert_eq!(best_penalty(&tie), 1.0);
    }
}
