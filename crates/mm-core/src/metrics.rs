//! Retrieval and classification metrics on host-side score matrices.
//!
//! Scores are row-major `rows x cols` slices (one row per query). Ties are broken against the
//! model: a wrong item scoring exactly as high as the right one counts as ranked above it, so a
//! degenerate model that maps everything to one point scores chance, not perfection.

/// A dense row-major score matrix (`scores[r * cols + c]`).
#[derive(Debug, Clone, Copy)]
pub struct Scores<'a> {
    /// The values, `rows * cols` of them.
    pub values: &'a [f32],
    /// Number of queries.
    pub rows: usize,
    /// Number of candidates.
    pub cols: usize,
}

impl<'a> Scores<'a> {
    /// Wraps `values`, checking its length.
    ///
    /// # Panics
    /// If `values.len() != rows * cols` (a programming error, not bad input).
    pub fn new(values: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(values.len(), rows * cols, "score matrix is not rows x cols");
        Self { values, rows, cols }
    }

    fn row(&self, r: usize) -> &'a [f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }

    /// The transposed matrix (candidates become queries).
    pub fn transposed(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.values.len()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                out[c * self.rows + r] = self.values[r * self.cols + c];
            }
        }
        out
    }
}

/// 0-based rank of the best-scoring correct candidate of one query: the number of wrong
/// candidates scoring at least as high. `None` when the query has no correct candidate.
pub fn best_rank(row: &[f32], correct: &[usize]) -> Option<usize> {
    let best = correct
        .iter()
        .map(|&c| row[c])
        .fold(f32::NEG_INFINITY, f32::max);
    if correct.is_empty() {
        return None;
    }
    let above = row
        .iter()
        .enumerate()
        .filter(|(c, s)| **s >= best && !correct.contains(c))
        .count();
    Some(above)
}

/// Recall@K for each `k` in `ks`: the fraction of queries with a correct candidate in the top
/// K. `correct[r]` lists the correct columns of row `r`; queries without any are skipped.
pub fn recall_at_k(scores: Scores<'_>, correct: &[Vec<usize>], ks: &[usize]) -> Vec<f64> {
    assert_eq!(correct.len(), scores.rows, "one correct-set per query");
    let ranks: Vec<usize> = (0..scores.rows)
        .filter_map(|r| best_rank(scores.row(r), &correct[r]))
        .collect();
    ks.iter()
        .map(|&k| {
            if ranks.is_empty() {
                0.0
            } else {
                ranks.iter().filter(|&&rank| rank < k).count() as f64 / ranks.len() as f64
            }
        })
        .collect()
}

/// Recall@K in both directions for `n_images x n_texts` similarities, where
/// `text_image[t]` is the image that text `t` describes (several texts may share an image).
/// Returns `(image_to_text, text_to_image)`, each one value per `k`.
pub fn bidirectional_recall(
    sim: Scores<'_>,
    text_image: &[usize],
    ks: &[usize],
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(text_image.len(), sim.cols, "one image index per text");
    let mut image_texts = vec![Vec::new(); sim.rows];
    for (t, &i) in text_image.iter().enumerate() {
        image_texts[i].push(t);
    }
    let i2t = recall_at_k(sim, &image_texts, ks);
    let transposed = sim.transposed();
    let text_correct: Vec<Vec<usize>> = text_image.iter().map(|&i| vec![i]).collect();
    let t2i = recall_at_k(
        Scores::new(&transposed, sim.cols, sim.rows),
        &text_correct,
        ks,
    );
    (i2t, t2i)
}

/// Top-k accuracy: the fraction of rows whose true class is among the `k` best scores.
pub fn top_k_accuracy(scores: Scores<'_>, labels: &[usize], k: usize) -> f64 {
    assert_eq!(labels.len(), scores.rows, "one label per row");
    if scores.rows == 0 {
        return 0.0;
    }
    let hits = (0..scores.rows)
        .filter(|&r| best_rank(scores.row(r), &[labels[r]]).is_some_and(|rank| rank < k))
        .count();
    hits as f64 / scores.rows as f64
}

/// The area under the ROC curve of scores that should rank `positives` above `negatives`:
/// the chance that a random positive outscores a random negative, ties counting a half
/// (the Mann-Whitney form; 0.5 when either side is empty).
pub fn roc_auc(positives: &[f64], negatives: &[f64]) -> f64 {
    if positives.is_empty() || negatives.is_empty() {
        return 0.5;
    }
    let mut wins = 0.0;
    for &p in positives {
        for &n in negatives {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (positives.len() * negatives.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs() {
        assert_eq!(roc_auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(roc_auc(&[0.1], &[0.9]), 0.0);
        // Pairs (0.6, 0.5) win, (0.6, 0.7) lose, (0.5, 0.5) tie, (0.5, 0.7) lose: 1.5 / 4.
        assert_eq!(roc_auc(&[0.6, 0.5], &[0.5, 0.7]), 0.375);
        assert_eq!(roc_auc(&[], &[1.0]), 0.5);
    }

    #[test]
    fn recall_on_hand_made_scores() {
        // 3 images x 3 texts; text t describes image t.
        // image 0: its text ranks 1st; image 1: 2nd; image 2: 3rd.
        #[rustfmt::skip]
        let sim = [
            0.9, 0.1, 0.0,
            0.8, 0.5, 0.1,
            0.7, 0.6, 0.2,
        ];
        let (i2t, t2i) = bidirectional_recall(Scores::new(&sim, 3, 3), &[0, 1, 2], &[1, 2, 3]);
        assert_eq!(i2t, vec![1.0 / 3.0, 2.0 / 3.0, 1.0]);
        // columns: text 0 -> image 0 best (0.9) rank 0; text 1 -> image 1 (0.5) below 0.6 -> rank 1;
        // text 2 -> image 2 (0.2) is the best of 0.0, 0.1, 0.2 -> rank 0.
        assert_eq!(t2i, vec![2.0 / 3.0, 1.0, 1.0]);
    }

    #[test]
    fn ties_count_against_the_model() {
        let sim = [0.5, 0.5, 0.5, 0.5];
        let (i2t, t2i) = bidirectional_recall(Scores::new(&sim, 2, 2), &[0, 1], &[1]);
        assert_eq!(i2t, vec![0.0]);
        assert_eq!(t2i, vec![0.0]);
    }

    #[test]
    fn several_texts_per_image() {
        // 2 images, 3 texts; texts 0 and 1 describe image 0, text 2 image 1.
        let sim = [0.1, 0.9, 0.5, 0.8, 0.2, 0.3];
        let (i2t, t2i) = bidirectional_recall(Scores::new(&sim, 2, 3), &[0, 0, 1], &[1]);
        // image 0 best text is 1 (0.9, correct); image 1's text 2 (0.3) is below text 0 (0.8).
        assert_eq!(i2t, vec![0.5]);
        // text 0: image 1 (0.8) beats image 0 (0.1); text 1: image 0 wins; text 2: 0.5 > 0.3.
        assert_eq!(t2i, vec![1.0 / 3.0]);
    }

    #[test]
    fn top_k_accuracy_counts_hits() {
        let scores = [0.1, 0.7, 0.2, 0.5, 0.3, 0.2];
        let s = Scores::new(&scores, 2, 3);
        assert_eq!(top_k_accuracy(s, &[1, 2], 1), 0.5);
        assert_eq!(top_k_accuracy(s, &[1, 2], 2), 0.5);
        assert_eq!(top_k_accuracy(s, &[1, 2], 3), 1.0);
    }
}
