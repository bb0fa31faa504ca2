//! Decoding strategies behind one interface: anything that can score the next token of a set
//! of sequences (a [`StepDecoder`]) decodes greedily, by beam search or by sampling, with
//! transformers' `generate()` semantics ([`GenerationConfig`]'s fields are its names).
//!
//! - [`beam`]: beam search (`num_beams`, `length_penalty`, `early_stopping`,
//!   `num_return_sequences`), step for step as transformers 4.57 runs it.
//! - [`greedy`]: greedy decoding and seeded sampling (temperature, top-k, top-p).
//! - [`processors`]: what is done to the scores before a token is picked
//!   (`no_repeat_ngram_size`, `suppress_tokens`, the sampling warpers).
//! - [`rerank`]: minimum-Bayes-risk reranking of a finished n-best list.

pub mod beam;
pub mod greedy;
pub mod processors;
pub mod rerank;

use serde::{Deserialize, Serialize};

/// Why decoding could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The settings do not fit together (or not the model).
    #[error("generation settings: {0}")]
    Config(String),
    /// The model failed to give scores.
    #[error("decoder: {0}")]
    Decoder(String),
}

/// A model that gives next-token logits for a set of sequences ("rows").
///
/// Decoding calls [`StepDecoder::next_logits`] once per new token with every row's whole
/// sequence so far (the start token first). `parents[i]` is the row of the previous call that
/// row `i` extends by its last token, so a decoder with a key/value cache reorders its cache
/// by `parents` and feeds only the last tokens; one without a cache reads the whole rows. On
/// the first call every row is the start token alone and `parents` is `0..rows`.
pub trait StepDecoder {
    /// Size of the vocabulary the logits cover.
    fn vocab_size(&self) -> usize;
    /// Logits of the next token, one `vocab_size` row per sequence.
    fn next_logits(
        &mut self,
        rows: &[Vec<u32>],
        parents: &[usize],
    ) -> Result<Vec<Vec<f32>>, GenerateError>;
}

/// When beam search stops (transformers' `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    /// Stop as soon as `num_beams` hypotheses are finished (`True`).
    True,
    /// Stop when no running beam can beat the worst finished one at its current length
    /// (`False`, transformers' default).
    #[default]
    False,
    /// The canonical rule: stop only when no running beam can beat the worst finished one,
    /// judged at the longest length it could reach when the length penalty favours length
    /// (`"never"`).
    Never,
}

impl std::str::FromStr for EarlyStopping {
    type Err = GenerateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Self::True),
            "false" => Ok(Self::False),
            "never" => Ok(Self::Never),
            other => Err(GenerateError::Config(format!(
                "early_stopping `{other}`: expected true, false or never"
            ))),
        }
    }
}

/// Decoding settings, under transformers' `GenerationConfig` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationConfig {
    /// Tokens to generate at most (the end token counts).
    pub max_new_tokens: usize,
    /// Beams; 1 is greedy decoding (or sampling).
    pub num_beams: usize,
    /// A finished hypothesis scores its summed log-probability divided by its length (new
    /// tokens, the end token included) to this power.
    pub length_penalty: f32,
    /// When beam search stops.
    pub early_stopping: EarlyStopping,
    /// Hypotheses returned, best first (at most `num_beams`).
    pub num_return_sequences: usize,
    /// No n-gram of this size occurs twice in a sequence (0: off).
    pub no_repeat_ngram_size: usize,
    /// Tokens never generated: their log-probability becomes `-inf` at every step (after the
    /// softmax, so the others keep theirs; transformers' `suppress_tokens`).
    pub suppress_tokens: Vec<u32>,
    /// Sample the next token instead of taking the best (greedy decoding only).
    pub do_sample: bool,
    /// Sampling temperature (> 0).
    pub temperature: f32,
    /// Sample among the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Sample among the smallest set of tokens whose probability reaches `top_p` (1: all).
    pub top_p: f32,
    /// Seed of the sampler.
    pub seed: u64,
    /// The token every sequence starts with.
    pub decoder_start_token_id: u32,
    /// The end-of-sequence token.
    pub eos_token_id: u32,
    /// The padding token.
    pub pad_token_id: u32,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 20,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            num_return_sequences: 1,
            no_repeat_ngram_size: 0,
            suppress_tokens: Vec::new(),
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            seed: 0,
            decoder_start_token_id: 0,
            eos_token_id: 0,
            pad_token_id: 0,
        }
    }
}

impl GenerationConfig {
    /// Checks the settings against each other and a vocabulary of `vocab` tokens.
    pub fn validate(&self, vocab: usize) -> Result<(), GenerateError> {
        let bad = |m: String| Err(GenerateError::Config(m));
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        if self.num_beams == 0 {
            return bad("num_beams must be at least 1".into());
        }
        if self.num_return_sequences == 0 || self.num_return_sequences > self.num_beams {
            return bad(format!(
                "num_return_sequences {} must be from 1 to num_beams ({})",
                self.num_return_sequences, self.num_beams
            ));
        }
        if self.do_sample && self.num_beams > 1 {
            return bad("sampling runs with num_beams 1 (beam sampling is not supported)".into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature {} must be positive", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p {} must be in (0, 1]", self.top_p));
        }
        if !self.length_penalty.is_finite() {
            return bad("length_penalty must be finite".into());
        }
        if 2 * self.num_beams > vocab {
            return bad(format!(
                "{} beams need a vocabulary of at least {} tokens; the model has {vocab}",
                self.num_beams,
                2 * self.num_beams
            ));
        }
        for (name, id) in [
            ("decoder_start_token_id", self.decoder_start_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if id as usize >= vocab {
                return bad(format!("{name} {id} is outside the vocabulary of {vocab}"));
            }
        }
        if let Some(&id) = self.suppress_tokens.iter().find(|&&t| t as usize >= vocab) {
            return bad(format!(
                "suppress_tokens holds {id}, outside the vocabulary of {vocab}"
            ));
        }
        let mut suppressed = vec![false; vocab];
        self.suppress_tokens
            .iter()
            .for_each(|&t| suppressed[t as usize] = true);
        if suppressed.iter().all(|s| *s) {
            return bad(format!(
                "suppress_tokens holds all {vocab} tokens: none is left to generate"
            ));
        }
        Ok(())
    }
}

/// One decoded sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The generated tokens (no start token; the end token last when one was generated).
    pub tokens: Vec<u32>,
    /// Beam search: the length-penalized summed log-probability (transformers'
    /// `sequences_scores`). Greedy and sampling: the summed log-probability.
    pub score: f32,
}

/// Decodes with `config`: beam search when `num_beams > 1`, else greedy or sampling.
pub fn generate<D: StepDecoder + ?Sized>(
    decoder: &mut D,
    config: &GenerationConfig,
) -> Result<Vec<Hypothesis>, GenerateError> {
    config.validate(decoder.vocab_size())?;
    if config.num_beams > 1 {
        beam::beam_search(decoder, config)
    } else {
        greedy::greedy_or_sample(decoder, config).map(|h| vec![h])
    }
}

/// `log_softmax` of one row of logits, in f32 as transformers computes it.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    logits.iter().map(|&x| x - max - log_sum).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A decoder whose next-token logits depend only on the last token: a Markov chain
    /// (row `t` of the table is the logits after token `t`).
    pub(crate) struct Chain(pub Vec<Vec<f32>>);

    impl StepDecoder for Chain {
        fn vocab_size(&self) -> usize {
            self.0.len()
        }
        fn next_logits(
            &mut self,
            rows: &[Vec<u32>],
            _: &[usize],
        ) -> Result<Vec<Vec<f32>>, GenerateError> {
            Ok(rows
                .iter()
                .map(|r| self.0[*r.last().unwrap() as usize].clone())
                .collect())
        }
    }

    #[test]
    fn settings_that_cannot_work_are_named() {
        let c = GenerationConfig {
            num_beams: 3,
            num_return_sequences: 4,
            ..Default::default()
        };
        assert!(
            c.validate(100)
                .unwrap_err()
                .to_string()
                .contains("num_return_sequences")
        );
        let c = GenerationConfig {
            num_beams: 40,
            num_return_sequences: 1,
            ..Default::default()
        };
        assert!(
            c.validate(64)
                .unwrap_err()
                .to_string()
                .contains("vocabulary")
        );
        let c = GenerationConfig {
            eos_token_id: 70,
            ..Default::default()
        };
        assert!(
            c.validate(64)
                .unwrap_err()
                .to_string()
                .contains("eos_token_id")
        );
        let c = GenerationConfig {
            suppress_tokens: vec![3, 64],
            ..Default::default()
        };
        assert!(
            c.validate(64)
                .unwrap_err()
                .to_string()
                .contains("suppress_tokens holds 64")
        );
        let c = GenerationConfig {
            num_beams: 3,
            suppress_tokens: (0..64).rev().collect(),
            ..Default::default()
        };
        assert!(
            c.validate(64)
                .unwrap_err()
                .to_string()
                .contains("none is left")
        );
        let c = GenerationConfig {
            num_beams: 3,
            suppress_tokens: (1..64).collect(),
            ..Default::default()
        };
        assert!(c.validate(64).is_ok());
        assert!("sometimes".parse::<EarlyStopping>().is_err());
        assert_eq!(
            "Never".parse::<EarlyStopping>().unwrap(),
            EarlyStopping::Never
        );
    }

    #[test]
    fn log_softmax_normalizes() {
        let l = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f32 = l.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!((l[2] - l[1] - 1.0).abs() < 1e-6);
    }
}
