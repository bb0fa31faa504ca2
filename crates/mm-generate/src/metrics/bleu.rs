//! Corpus BLEU-1..4 as pycocoevalcap's `Bleu(4)` computes it: clipped n-gram matches summed
//! over the corpus, the reference length of each item the one closest to its candidate's
//! (the shorter on ties), the brevity penalty on the corpus totals, and pycocoevalcap's tiny
//! smoothing constants (so a corpus with no 4-gram match scores about 0, not an error).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{MetricError, check, ngram_counts};

const TINY: f64 = 1e-15;
const SMALL: f64 = 1e-9;

/// BLEU-1..4 of a corpus and of each item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bleu {
    /// Corpus BLEU-n for n = 1..4.
    pub corpus: [f64; 4],
    /// Each item's own BLEU-1..4.
    pub items: Vec<[f64; 4]>,
}

struct Counts {
    test_len: usize,
    ref_len: usize,
    guess: [usize; 4],
    correct: [usize; 4],
}

fn counts(candidate: &[String], references: &[Vec<String>]) -> Counts {
    let mut max_ref: HashMap<&[String], usize> = HashMap::new();
    for r in references {
        for (gram, c) in ngram_counts(r, 4) {
            let e = max_ref.entry(gram).or_insert(0);
            *e = (*e).max(c);
        }
    }
    let test_len = candidate.len();
    let ref_len = references
        .iter()
        .map(|r| (r.len().abs_diff(test_len), r.len()))
        .min()
        .map_or(0, |(_, l)| l);
    let mut correct = [0; 4];
    for (gram, c) in ngram_counts(candidate, 4) {
        correct[gram.len() - 1] += c.min(max_ref.get(gram).copied().unwrap_or(0));
    }
    let guess = std::array::from_fn(|k| (test_len + 1).saturating_sub(k + 1));
    Counts {
        test_len,
        ref_len,
        guess,
        correct,
    }
}

fn score(c: &Counts) -> [f64; 4] {
    let mut out = [0.0; 4];
    let mut product = 1.0;
    for (k, o) in out.iter_mut().enumerate() {
        product *= (c.correct[k] as f64 + TINY) / (c.guess[k] as f64 + SMALL);
        *o = product.powf(1.0 / (k + 1) as f64);
    }
    let ratio = (c.test_len as f64 + TINY) / (c.ref_len as f64 + SMALL);
    if ratio < 1.0 {
        out.iter_mut().for_each(|x| *x *= (1.0 - 1.0 / ratio).exp());
    }
    out
}

/// BLEU of `candidates[i]` against `references[i]` (captions as words).
pub fn bleu(
    candidates: &[Vec<String>],
    references: &[Vec<Vec<String>>],
) -> Result<Bleu, MetricError> {
    check(candidates.len(), references)?;
    let per: Vec<Counts> = candidates
        .iter()
        .zip(references)
        .map(|(c, r)| counts(c, r))
        .collect();
    let mut total = Counts {
        test_len: 0,
        ref_len: 0,
        guess: [0; 4],
        correct: [0; 4],
    };
    for c in &per {
        total.test_len += c.test_len;
        total.ref_len += c.ref_len;
        for k in 0..4 {
            total.guess[k] += c.guess[k];
            total.correct[k] += c.correct[k];
        }
    }
    Ok(Bleu {
        corpus: score(&total),
        items: per.iter().map(score).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::caption_words;

    #[test]
    fn a_copy_scores_one_and_a_miss_about_zero() {
        let refs = vec![vec![caption_words("a red circle on a blue square")]];
        let same = bleu(&[caption_words("a red circle on a blue square")], &refs).unwrap();
        assert!(same.corpus.iter().all(|&b| (b - 1.0).abs() < 1e-6));
        let miss = bleu(&[caption_words("two dogs")], &refs).unwrap();
        assert!(miss.corpus[0] < 1e-6);
    }
}
