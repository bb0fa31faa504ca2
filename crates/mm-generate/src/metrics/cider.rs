//! CIDEr-D as pycocoevalcap's `Cider` computes it: n-grams of 1 to 4 words weighted by
//! tf-idf, with document frequencies counted over the reference sets of the scored corpus; per
//! n, the clipped cosine similarity of candidate and reference vectors times a Gaussian
//! penalty on their length difference (sigma 6), averaged over n and over references, times
//! 10. As in pycocoevalcap, the "length" of that penalty is the count of bigrams.
//!
//! [`CiderD`] keeps the document frequencies of one corpus so that captions can be scored
//! one at a time against them (self-critical training scores sampled captions against the
//! training references' statistics, as Rennie et al. did).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{MetricError, check, ngram_counts};

const N: usize = 4;
const SIGMA: f64 = 6.0;

/// CIDEr-D of a corpus (the mean) and of each item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cider {
    /// Mean over items.
    pub mean: f64,
    /// Each item's score.
    pub items: Vec<f64>,
}

struct Vector<'a> {
    weights: [HashMap<&'a [String], f64>; N],
    norms: [f64; N],
    length: f64,
}

fn vector<'a>(words: &'a [String], df: &HashMap<Vec<String>, f64>, log_refs: f64) -> Vector<'a> {
    let mut weights: [HashMap<&'a [String], f64>; N] = Default::default();
    let mut norms = [0.0; N];
    let mut length = 0.0;
    for (gram, tf) in ngram_counts(words, N) {
        let n = gram.len() - 1;
        let doc = df.get(gram).copied().unwrap_or(0.0).max(1.0).ln();
        let w = tf as f64 * (log_refs - doc);
        weights[n].insert(gram, w);
        norms[n] += w * w;
        if n == 1 {
            length += tf as f64;
        }
    }
    Vector {
        weights,
        norms: norms.map(f64::sqrt),
        length,
    }
}

fn similarity(hyp: &Vector, reference: &Vector) -> [f64; N] {
    let delta = hyp.length - reference.length;
    let mut out = [0.0; N];
    for (n, o) in out.iter_mut().enumerate() {
        for (gram, &w) in &hyp.weights[n] {
            let r = reference.weights[n].get(gram).copied().unwrap_or(0.0);
            *o += w.min(r) * r;
        }
        if hyp.norms[n] != 0.0 && reference.norms[n] != 0.0 {
            *o /= hyp.norms[n] * reference.norms[n];
        }
        *o *= std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
    }
    out
}

/// CIDEr-D's document frequencies over a corpus of reference sets.
#[derive(Debug, Clone)]
pub struct CiderD {
    df: HashMap<Vec<String>, f64>,
    log_refs: f64,
}

impl CiderD {
    /// Counts, for every n-gram, the reference sets (images) that hold it.
    pub fn new(references: &[Vec<Vec<String>>]) -> Self {
        let mut df: HashMap<Vec<String>, f64> = HashMap::new();
        for refs in references {
            let mut seen: std::collections::HashSet<&[String]> = std::collections::HashSet::new();
            for r in refs {
                seen.extend(ngram_counts(r, N).into_keys());
            }
            for gram in seen {
                *df.entry(gram.to_vec()).or_insert(0.0) += 1.0;
            }
        }
        Self {
            df,
            log_refs: (references.len().max(1) as f64).ln(),
        }
    }

    /// CIDEr-D of one candidate against its references (0 without references).
    pub fn score(&self, candidate: &[String], references: &[Vec<String>]) -> f64 {
        if references.is_empty() {
            return 0.0;
        }
        let hyp = vector(candidate, &self.df, self.log_refs);
        let mut total = [0.0; N];
        for r in references {
            let s = similarity(&hyp, &vector(r, &self.df, self.log_refs));
            for n in 0..N {
                total[n] += s[n];
            }
        }
        total.iter().sum::<f64>() / N as f64 / references.len() as f64 * 10.0
    }
}

/// CIDEr-D of `candidates[i]` against `references[i]` (captions as words), with document
/// frequencies over `references`.
pub fn cider(
    candidates: &[Vec<String>],
    references: &[Vec<Vec<String>>],
) -> Result<Cider, MetricError> {
    check(candidates.len(), references)?;
    let scorer = CiderD::new(references);
    let items: Vec<f64> = candidates
        .iter()
        .zip(references)
        .map(|(c, refs)| scorer.score(c, refs))
        .collect();
    Ok(Cider {
        mean: items.iter().sum::<f64>() / items.len() as f64,
        items,
    })
}
