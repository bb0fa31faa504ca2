//! Scoring a captioner on held-out images: greedy decoding, beam 3 and beam 5 side by side,
//! each with corpus BLEU-1..4, CIDEr-D and exact match (the candidate's words equal one
//! reference's), over all test images and per source; plus a few examples per source. Each
//! beam width's whole n-best list is kept, so the same search also gives its minimum-Bayes-risk
//! reranking ([`mbr_first`]: `beam3_mbr`, `beam5_mbr`). Every other decoding is also set
//! against greedy decoding image by image ([`paired_difference`] of per-image CIDEr-D).

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use mm_text::WordPieceTokenizer;
use serde::{Deserialize, Serialize};

use super::data::CaptionSet;
use super::hf::CaptionError;
use super::model::Captioner;
use crate::decode::GenerationConfig;
use crate::decode::rerank::{mbr_order, summed_log_prob};
use crate::metrics::paired::RESAMPLES;
use crate::metrics::{PairedDifference, bleu, caption_words, cider, ngram_f1, paired_difference};

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
    /// Beam search, 3 beams, the 3 finished captions reranked by minimum Bayes risk.
    pub beam3_mbr: StrategyReport,
    /// Beam search, 5 beams, the 5 finished captions reranked by minimum Bayes risk.
    pub beam5_mbr: StrategyReport,
    /// Each other decoding against greedy decoding, image by image over all test images:
    /// per-image CIDEr-D (document frequencies of all the test references, so `mean` is the
    /// difference of the two `cider` figures above), wins, losses, ties and a 95% bootstrap
    /// interval (seed [`BOOTSTRAP_SEED`]). Absent from reports written before 2026-12-05.
    #[serde(default)]
    pub against_greedy: BTreeMap<String, PairedDifference>,
    /// Test images.
    pub n_test: usize,
    /// The first few images of each source.
    pub examples: Vec<Example>,
}

/// A finished caption with its summed log-probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The caption.
    pub text: String,
    /// Its summed log-probability (beam search's length penalty taken back out).
    pub log_prob: f64,
}

/// Tokens to suppress per source name (see [`tokens_outside`]); a source not named
/// decodes with its settings' own `suppress_tokens`.
pub type SourceSuppression = BTreeMap<String, Vec<u32>>;

/// Every token of `tokenizer` that no caption of `captions` uses, sorted: with them as
/// `suppress_tokens`, decoding writes only those captions' word pieces and the end token
/// `eos` (the other special tokens and `[UNK]` are suppressed too).
pub fn tokens_outside(
    tokenizer: &WordPieceTokenizer,
    captions: &[String],
    eos: u32,
) -> Result<Vec<u32>, CaptionError> {
    let mut used = vec![false; tokenizer.vocab_size()];
    for caption in captions {
        let len = tokenizer.count_tokens(caption)?;
        let (ids, _) = tokenizer.encode(caption, len)?;
        for id in ids {
            if let Some(u) = used.get_mut(id as usize) {
                *u = true;
            }
        }
    }
    let special = |id: u32| {
        tokenizer
            .token(id)
            .is_some_and(|t| t.starts_with('[') && t.ends_with(']'))
    };
    Ok((0..tokenizer.vocab_size() as u32)
        .filter(|&id| id != eos && (!used[id as usize] || special(id)))
        .collect())
}

/// Every image's finished captions under `config`, best first (`num_return_sequences` of
/// them); an image of a source that `suppress` names decodes with that source's tokens
/// suppressed as well.
pub fn caption_set_nbest<B: Backend>(
    model: &Captioner<B>,
    tokenizer: &WordPieceTokenizer,
    set: &CaptionSet,
    config: &GenerationConfig,
    suppress: &SourceSuppression,
    device: &B::Device,
) -> Result<Vec<Vec<Finished>>, CaptionError> {
    let penalty = if config.num_beams > 1 {
        config.length_penalty
    } else {
        0.0
    };
    let per_source: Vec<GenerationConfig> = set
        .sources
        .iter()
        .map(|name| {
            let mut c = config.clone();
            if let Some(extra) = suppress.get(name) {
                c.suppress_tokens.extend_from_slice(extra);
            }
            c
        })
        .collect();
    (0..set.len())
        .map(|i| {
            let pixels = set.pixels(&[i], &[(0, 0)]).to_tensor::<B>(device);
            model
                .caption(pixels, &per_source[set.source[i]], true)?
                .iter()
                .map(|h| {
                    Ok(Finished {
                        text: tokenizer.decode(&h.tokens)?,
                        log_prob: summed_log_prob(h, penalty),
                    })
                })
                .collect()
        })
        .collect()
}

/// The best caption of every image of `set` under `config`.
pub fn caption_set<B: Backend>(
    model: &Captioner<B>,
    tokenizer: &WordPieceTokenizer,
    set: &CaptionSet,
    config: &GenerationConfig,
    device: &B::Device,
) -> Result<Vec<String>, CaptionError> {
    let one = GenerationConfig {
        num_return_sequences: 1,
        ..config.clone()
    };
    let nbest = caption_set_nbest(model, tokenizer, set, &one, &BTreeMap::new(), device)?;
    Ok(nbest
        .into_iter()
        .map(|mut n| n.swap_remove(0).text)
        .collect())
}

/// The order of an n-best list of captions by minimum Bayes risk, best first: each caption's
/// expected [`ngram_f1`] (on words) against the list, weighted by the captions' probabilities
/// renormalized over it ([`mbr_order`]; ties keep the list's order).
pub fn mbr_first(captions: &[Finished]) -> Vec<usize> {
    let words: Vec<Vec<String>> = captions.iter().map(|c| caption_words(&c.text)).collect();
    let log_probs: Vec<f64> = captions.iter().map(|c| c.log_prob).collect();
    mbr_order(&log_probs, |i, j| ngram_f1(&words[i], &words[j]))
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

/// Captions `test` with each of [`strategies`]`(base)`, and each beam width's n-best list
/// reranked by minimum Bayes risk ([`mbr_first`]), and scores them. The images of a source
/// that `suppress` names decode with its tokens suppressed, with every strategy.
pub fn evaluate_captioner<B: Backend>(
    model: &Captioner<B>,
    tokenizer: &WordPieceTokenizer,
    test: &CaptionSet,
    base: &GenerationConfig,
    suppress: &SourceSuppression,
    examples_per_set: usize,
    device: &B::Device,
) -> Result<CaptionReport, CaptionError> {
    let references = reference_words(test);
    let mut texts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, config) in strategies(base) {
        let config = GenerationConfig {
            num_return_sequences: config.num_beams,
            ..config
        };
        let nbest = caption_set_nbest(model, tokenizer, test, &config, suppress, device)?;
        if config.num_beams > 1 {
            let reranked = nbest.iter().map(|n| n[mbr_first(n)[0]].text.clone());
            texts.insert(mbr_name(name), reranked.collect());
        }
        let best = nbest.into_iter().map(|mut n| n.swap_remove(0).text);
        texts.insert(name, best.collect());
    }
    let against_greedy = against_greedy(&references, &texts)?;
    let mut reports = BTreeMap::new();
    for (&name, out) in &texts {
        reports.insert(name, strategy_report(test, &references, out)?);
        tracing::info!(
            strategy = name,
            bleu4 = reports[name].all.bleu4,
            cider = reports[name].all.cider,
            "captions scored"
        );
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
        beam3_mbr: take("beam3_mbr"),
        beam5_mbr: take("beam5_mbr"),
        against_greedy,
        n_test: test.len(),
        examples,
    })
}

/// The seed of [`CaptionReport::against_greedy`]'s bootstrap.
pub const BOOTSTRAP_SEED: u64 = 2026;

/// Every strategy of `texts` but greedy against greedy, on per-image CIDEr-D over all images.
fn against_greedy(
    references: &[Vec<Vec<String>>],
    texts: &BTreeMap<&str, Vec<String>>,
) -> Result<BTreeMap<String, PairedDifference>, CaptionError> {
    let metric = |e: crate::metrics::MetricError| CaptionError::Config(e.to_string());
    let items = |captions: &[String]| {
        let words: Vec<Vec<String>> = captions.iter().map(|t| caption_words(t)).collect();
        cider(&words, references).map(|c| c.items).map_err(metric)
    };
    let greedy = items(&texts["greedy"])?;
    let mut out = BTreeMap::new();
    for (&name, captions) in texts.iter().filter(|(k, _)| **k != "greedy") {
        let diff = paired_difference(&items(captions)?, &greedy, RESAMPLES, BOOTSTRAP_SEED);
        out.insert(name.to_string(), diff.map_err(metric)?);
    }
    Ok(out)
}

/// The name of a beam width's MBR-reranked strategy.
fn mbr_name(beam: &str) -> &'static str {
    match beam {
        "beam3" => "beam3_mbr",
        _ => "beam5_mbr",
    }
}

/// One strategy's captions scored over all of `test` and per source.
fn strategy_report(
    test: &CaptionSet,
    references: &[Vec<Vec<String>>],
    captions: &[String],
) -> Result<StrategyReport, CaptionError> {
    let words: Vec<Vec<String>> = captions.iter().map(|t| caption_words(t)).collect();
    let all = scores(&words, references)?;
    let mut sets = BTreeMap::new();
    for (s, indices) in test.by_source().iter().enumerate() {
        if indices.is_empty() {
            continue;
        }
        let c: Vec<Vec<String>> = indices.iter().map(|&i| words[i].clone()).collect();
        let r: Vec<Vec<Vec<String>>> = indices.iter().map(|&i| references[i].clone()).collect();
        sets.insert(test.sources[s].clone(), scores(&c, &r)?);
    }
    Ok(StrategyReport { all, sets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(text: &str, log_prob: f64) -> Finished {
        Finished {
            text: text.into(),
            log_prob,
        }
    }

    #[test]
    fn mbr_puts_the_caption_the_others_share_first_unless_the_first_is_near_certain() {
        // Beam search's first caption is a sentence learned by heart that shares no word with
        // the other three, which hold most of the mass together; "face" is closest to them.
        let mut nbest = vec![
            finished("the tender carries water and coal for the engine.", -2.0),
            finished("face", -2.1),
            finished("grinning face", -2.2),
            finished("face with tears", -2.3),
        ];
        // Expected n-gram F1: 0.375 for "face", 0.352 for "grinning face", 0.289 for the
        // sentence (its own weight).
        assert_eq!(mbr_first(&nbest)[..2], [1, 2]);
        nbest[0].log_prob = -0.01;
        assert_eq!(mbr_first(&nbest)[0], 0);
        assert_eq!(mbr_first(&nbest[..1]), vec![0]);
    }

    #[test]
    fn tokens_outside_a_source_are_every_other_word_and_the_specials_but_the_end() {
        let tokenizer =
            WordPieceTokenizer::from_words(&["grinning face", "a red circle", "a duck."]).unwrap();
        let id = |w: &str| {
            (0..tokenizer.vocab_size() as u32)
                .find(|&i| tokenizer.token(i) == Some(w))
                .unwrap()
        };
        let eos = id("[SEP]");
        let outside = tokens_outside(&tokenizer, &["Grinning face!".to_string()], eos).unwrap();
        let kept: Vec<&str> = (0..tokenizer.vocab_size() as u32)
            .filter(|i| !outside.contains(i))
            .map(|i| tokenizer.token(i).unwrap())
            .collect();
        // "!" is not in the vocabulary: it reads as [UNK], which stays suppressed.
        assert_eq!(kept, ["[SEP]", "face", "grinning"]);
        assert!(outside.windows(2).all(|w| w[0] < w[1]));
    }
}
