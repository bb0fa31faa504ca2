//! Scoring a captioner on held-out images: greedy decoding, beam 3 and beam 5 side by side,
//! each with corpus BLEU-1..4, CIDEr-D and exact match (the candidate's words equal one
//! reference's), over all test images and per source; plus a few examples per source.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use mm_text::WordPieceTokenizer;
use serde::{Deserialize, Serialize};

use super::data::CaptionSet;
use super::hf::CaptionError;
use super::model::Captioner;
use crate::decode::GenerationConfig;
use crate::metrics::{bleu, caption_words, cider};

/// The three strategies compared: name and settings (from `base`, which holds the special
/// tokens and `max_new_tokens`).
pub fn strategies(base: &GenerationConfig) -> Vec<(&'static str, GenerationConfig)> {
    [("greedy", 1), ("beam3", 3), ("beam5", 5)]
        .into_iter()
        .map(|(name, beams)| {
            (
                name,
                GenerationConfig {
                    num_beams: beams,
                    num_return_sequences: 1,
                    do_sample: false,
                    ..base.clone()
                },
            )
        })
        .collect()
}

/// Metric values over a set of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Corpus BLEU-1.
    pub bleu1: f64,
    /// Corpus BLEU-2.
    pub bleu2: f64,
    /// Corpus BLEU-3.
    pub bleu3: f64,
    /// Corpus BLEU-4.
    pub bleu4: f64,
    /// CIDEr-D (document frequencies over these images' references).
    pub cider: f64,
    /// Fraction of candidates equal (as words) to one of their references.
    pub exact_match: f64,
    /// Images scored.
    pub n: usize,
}

/// One strategy's scores over all test images and per source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// Over every test image.
    #[serde(flatten)]
    pub all: Scores,
    /// Per source ("stamps", "emoji", "shapes", ...).
    pub sets: BTreeMap<String, Scores>,
}

/// An image with its references and each strategy's caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Its source.
    pub set: String,
    /// The image file.
    pub image: String,
    /// Reference captions.
    pub references: Vec<String>,
    /// Caption per strategy.
    pub captions: BTreeMap<String, String>,
}

/// What `eval caption` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionReport {
    /// Greedy decoding.
    pub greedy: StrategyReport,
    /// Beam search, 3 beams.
    pub beam3: StrategyReport,
    /// Beam search, 5 beams.
    pub beam5: StrategyReport,
    /// Test images.
    pub n_test: usize,
    /// The first few images of each source.
    pub examples: Vec<Example>,
}

/// The best caption of every image of `set` under `config`.
pub fn caption_set<B: Backend>(
    model: &Captioner<B>,
    tokenizer: &WordPieceTokenizer,
    set: &CaptionSet,
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<String>, CaptionError> {
    (0..set.len())
        .map(|i| {
            let pixels = set.pixels(&[i], &[(0, 0)]).to_tensor::<B>(device);
            let best = model.caption(pixels, config, true)?;
            Ok(tokenizer.decode(&best[0].tokens)?)
        })
        .collect()
}

/// The references of every image of `set`, as words.
pub fn reference_words(set: &CaptionSet) -> Vec<Vec<Vec<String>>> {
    set.captions
        .iter()
        .map(|refs| refs.iter().map(|r| caption_words(r)).collect())
        .collect()
}

/// BLEU, CIDEr-D and exact match of `candidates` against `references`.
pub fn scores(
    candidates: &[Vec<String>],
    references: &[Vec<Vec<String>>],
) -> Result<Scores, CaptionError> {
    let metric = |e: crate::metrics::MetricError| CaptionError::Config(e.to_string());
    let b = bleu(candidates, references).map_err(metric)?;
    let c = cider(candidates, references).map_err(metric)?;
    let exact = candidates
        .iter()
        .zip(references)
        .filter(|(c, refs)| refs.contains(c))
        .count();
    Ok(Scores {
        bleu1: b.corpus[0],
        bleu2: b.corpus[1],
        bleu3: b.corpus[2],
        bleu4: b.corpus[3],
        cider: c.mean,
        exact_match: exact as f64 / candidates.len() as f64,
        n: candidates.len(),
    })
}

/// Captions `test` with each of [`strategies`]`(base)` and scores them.
pub fn evaluate_captioner<B: Backend>(
    model: &Captioner<B>,
    tokenizer: &WordPieceTokenizer,
    test: &CaptionSet,
    base: &GenerationConfig,
    examples_per_set: usize,
    device: &B::Device,
) -> Result<CaptionReport, CaptionError> {
    let references = reference_words(test);
    let mut texts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut reports = BTreeMap::new();
    for (name, config) in strategies(base) {
        let out = caption_set(model, tokenizer, test, &config, device)?;
        let words: Vec<Vec<String>> = out.iter().map(|t| caption_words(t)).collect();
        let all = scores(&words, &references)?;
        let mut sets = BTreeMap::new();
        for (s, indices) in test.by_source().iter().enumerate() {
            if indices.is_empty() {
                continue;
            }
            let c: Vec<Vec<String>> = indices.iter().map(|&i| words[i].clone()).collect();
            let r: Vec<Vec<Vec<String>>> = indices.iter().map(|&i| references[i].clone()).collect();
            sets.insert(test.sources[s].clone(), scores(&c, &r)?);
        }
        tracing::info!(
            strategy = name,
            bleu4 = all.bleu4,
            cider = all.cider,
            "captions scored"
        );
        reports.insert(name, StrategyReport { all, sets });
        texts.insert(name, out);
    }
    let mut examples = Vec::new();
    for (s, indices) in test.by_source().iter().enumerate() {
        for &i in indices.iter().take(examples_per_set) {
            examples.push(Example {
                set: test.sources[s].clone(),
                image: test.paths[i].display().to_string(),
                references: test.captions[i].clone(),
                captions: texts
                    .iter()
                    .map(|(k, v)| (k.to_string(), v[i].clone()))
                    .collect(),
            });
        }
    }
    let mut take = |k: &str| reports.remove(k).expect("every strategy ran");
    Ok(CaptionReport {
        greedy: take("greedy"),
        beam3: take("beam3"),
        beam5: take("beam5"),
        n_test: test.len(),
        examples,
    })
}
