//! Caption metrics, as the COCO caption evaluation computes them (pycocoevalcap's pure-Python
//! BLEU and CIDEr-D, which the parity test runs): [`bleu`] (corpus BLEU-1..4) and [`cider`]
//! (CIDEr-D). Both take captions as words; [`caption_words`] makes them from raw text the way
//! the COCO tokenizer roughly does (lower case, punctuation dropped). [`ngram_f1`] compares
//! two captions with each other (the utility of minimum-Bayes-risk reranking);
//! [`paired_difference`] compares two decodings image by image, with a bootstrap interval.

pub mod bleu;
pub mod cider;
pub mod paired;

pub use bleu::{Bleu, bleu};
pub use cider::{Cider, CiderD, cider};
pub use paired::{PairedDifference, paired_difference};

use std::collections::HashMap;

/// Lower-cased words of `text` with punctuation dropped ("A duck." -> `["a", "duck"]`).
pub fn caption_words(text: &str) -> Vec<String> {
    mm_text::wordpiece::basic_words(text)
        .into_iter()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

/// Counts of every n-gram of 1 to `n` words.
pub(crate) fn ngram_counts(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for k in 1..=n {
        for gram in words.windows(k) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// How alike two captions are: the F1 of their shared n-grams (counts clipped, as BLEU
/// clips them), averaged over n from 1 to 4, or to the longer caption's length when that is
/// shorter (so two equal one-word captions score 1, not 1/4). Symmetric, 1 for equal
/// captions (two empty ones included), 0 when no word is shared.
pub fn ngram_f1(a: &[String], b: &[String]) -> f64 {
    let longest = a.len().max(b.len()).min(4);
    if longest == 0 {
        return 1.0;
    }
    let mut total = 0.0;
    for n in 1..=longest {
        let mut counts: HashMap<&[String], (usize, usize)> = HashMap::new();
        for gram in a.windows(n) {
            counts.entry(gram).or_default().0 += 1;
        }
        for gram in b.windows(n) {
            counts.entry(gram).or_default().1 += 1;
        }
        let shared: usize = counts.values().map(|&(x, y)| x.min(y)).sum();
        let grams = a.len().saturating_sub(n - 1) + b.len().saturating_sub(n - 1);
        if grams > 0 {
            total += 2.0 * shared as f64 / grams as f64;
        }
    }
    total / longest as f64
}

/// Why captions cannot be scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    /// Candidates and reference sets differ in number.
    #[error("{candidates} candidates but {references} reference sets")]
    Mismatch {
        /// Candidates given.
        candidates: usize,
        /// Reference sets given.
        references: usize,
    },
    /// An item has no reference.
    #[error("item {0} has no reference caption")]
    NoReference(usize),
    /// Nothing to score.
    #[error("no captions to score")]
    Empty,
    /// A bootstrap asked for with no resample.
    #[error("a bootstrap interval needs at least one resample")]
    NoResamples,
}

pub(crate) fn check(candidates: usize, references: &[Vec<Vec<String>>]) -> Result<(), MetricError> {
    if candidates != references.len() {
        return Err(MetricError::Mismatch {
            candidates,
            references: references.len(),
        });
    }
    if candidates == 0 {
        return Err(MetricError::Empty);
    }
    if let Some(i) = references.iter().position(Vec::is_empty) {
        return Err(MetricError::NoReference(i));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_punctuation_and_case() {
        assert_eq!(
            caption_words("An Adelaide Rosella."),
            ["an", "adelaide", "rosella"]
        );
        assert_eq!(caption_words("  "), Vec::<String>::new());
        let refs = vec![vec![caption_words("a duck")]];
        assert_eq!(
            check(2, &refs),
            Err(MetricError::Mismatch {
                candidates: 2,
                references: 1
            })
        );
        assert_eq!(check(1, &[vec![]]), Err(MetricError::NoReference(0)));
    }

    #[test]
    fn ngram_f1_counts_shared_ngrams() {
        let w = |s: &str| caption_words(s);
        assert_eq!(ngram_f1(&w("a red circle"), &w("a red circle")), 1.0);
        assert_eq!(ngram_f1(&w("face"), &w("face")), 1.0);
        assert_eq!(ngram_f1(&[], &[]), 1.0);
        assert_eq!(ngram_f1(&w("cow"), &w("a duck")), 0.0);
        assert_eq!(ngram_f1(&w("cow"), &[]), 0.0);
        // "face" against "face with tears": unigrams 2*1/4, bigrams 0/2, trigrams 0/1.
        let f = ngram_f1(&w("face"), &w("face with tears"));
        assert!((f - 0.5 / 3.0).abs() < 1e-12, "{f}");
        assert_eq!(f, ngram_f1(&w("face with tears"), &w("face")));
        // Counts are clipped: "a a a" shares one "a" with "a duck", and no bigram.
        let f = ngram_f1(&w("a a a"), &w("a duck"));
        let expected = (2.0 / 5.0 + 0.0 + 0.0) / 3.0;
        assert!((f - expected).abs() < 1e-12, "{f}");
    }
}
