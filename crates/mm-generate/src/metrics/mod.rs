//! Caption metrics, as the COCO caption evaluation computes them (pycocoevalcap's pure-Python
//! BLEU and CIDEr-D, which the parity test runs): [`bleu`] (corpus BLEU-1..4) and [`cider`]
//! (CIDEr-D). Both take captions as words; [`caption_words`] makes them from raw text the way
//! the COCO tokenizer roughly does (lower case, punctuation dropped).

pub mod bleu;
pub mod cider;

pub use bleu::{Bleu, bleu};
pub use cider::{Cider, CiderD, cider};

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
}
