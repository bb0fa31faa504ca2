//! Minimum-Bayes-risk (MBR) reranking of a finished n-best list: each hypothesis is scored by
//! its expected utility against the list, every hypothesis weighted by its probability
//! (renormalized over the list), and the one with the highest expectation comes first.
//!
//! Beam search returns the most probable sequence. When a model cannot place its input, that
//! sequence is often an outlier (a long sentence learned by heart, whose later words cost
//! almost nothing once the first are chosen), while the other beams, together about as
//! probable, agree on something plainer. Choosing the hypothesis with the highest expected
//! utility instead of the highest probability is the MBR rule of Kumar and Byrne (2004); with
//! a confident model (one hypothesis holding nearly all the mass) it keeps beam search's
//! choice. The utility is the caller's (for captions, [`crate::metrics::ngram_f1`] on their
//! words), so any step decoder's n-best list can be reranked.

use super::Hypothesis;

/// A finished hypothesis's summed log-probability, recovered from beam search's score (the
/// sum divided by `length ** length_penalty`, the length counting every generated token).
pub fn summed_log_prob(hypothesis: &Hypothesis, length_penalty: f32) -> f64 {
    let length = hypothesis.tokens.len().max(1) as f64;
    hypothesis.score as f64 * length.powf(length_penalty as f64)
}

/// The order of hypotheses with summed log-probabilities `log_probs` by expected
/// `utility(i, j)` over `j`, each `j` weighted by its probability renormalized over the list
/// (`utility(i, i)` counts too), best first; ties keep the list's order. One hypothesis or
/// none keeps its order.
pub fn mbr_order(log_probs: &[f64], utility: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    let n = log_probs.len();
    let mut order: Vec<usize> = (0..n).collect();
    if n < 2 {
        return order;
    }
    let max = log_probs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = log_probs.iter().map(|&l| (l - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let expected: Vec<f64> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| weights[j] / total * utility(i, j))
                .sum::<f64>()
        })
        .collect();
    order.sort_by(|&a, &b| expected[b].total_cmp(&expected[a]).then(a.cmp(&b)));
    order
}

/// Beam search's `hypotheses` (decoded at `length_penalty`) reordered by [`mbr_order`] under
/// `utility` on their tokens.
pub fn rerank_mbr(
    hypotheses: Vec<Hypothesis>,
    length_penalty: f32,
    utility: impl Fn(&[u32], &[u32]) -> f64,
) -> Vec<Hypothesis> {
    let log_probs: Vec<f64> = hypotheses
        .iter()
        .map(|h| summed_log_prob(h, length_penalty))
        .collect();
    let order = mbr_order(&log_probs, |i, j| {
        utility(&hypotheses[i].tokens, &hypotheses[j].tokens)
    });
    let mut slots: Vec<Option<Hypothesis>> = hypotheses.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each index once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hyp(tokens: &[u32], score: f32) -> Hypothesis {
        Hypothesis {
            tokens: tokens.to_vec(),
            score,
        }
    }

    /// Shared tokens over the longer length: 1 for equal sequences, 0 for disjoint ones.
    fn overlap(a: &[u32], b: &[u32]) -> f64 {
        let shared = a.iter().filter(|t| b.contains(t)).count();
        shared as f64 / a.len().max(b.len()).max(1) as f64
    }

    #[test]
    fn an_outlier_gives_way_to_what_the_others_agree_on_unless_it_is_near_certain() {
        // The most probable hypothesis shares nothing with the other three, which share most
        // of their tokens and together hold more of the mass: the one closest to both others
        // comes first, and the outlier last.
        let list = vec![
            hyp(&[9, 8, 7, 6, 5], -1.0),
            hyp(&[1, 2, 3], -1.5),
            hyp(&[1, 2], -1.6),
            hyp(&[1, 2, 4], -1.7),
        ];
        let ranked = rerank_mbr(list.clone(), 0.0, overlap);
        let tokens: Vec<&[u32]> = ranked.iter().map(|h| h.tokens.as_slice()).collect();
        assert_eq!(tokens[0], &[1, 2, 3]);
        assert_eq!(tokens[3], &[9, 8, 7, 6, 5]);
        // Scores travel with their tokens.
        assert_eq!(ranked[3].score, -1.0);
        // When the outlier holds nearly all the mass, beam search's order stands.
        let mut confident = list;
        confident[0].score = -0.01;
        for h in &mut confident[1..] {
            h.score -= 8.0;
        }
        let ranked = rerank_mbr(confident, 0.0, overlap);
        assert_eq!(ranked[0].tokens, [9, 8, 7, 6, 5]);
    }

    #[test]
    fn log_probs_come_back_from_penalized_scores() {
        // Three tokens, summed log-probability -6, length penalty 1: beam search scored -2.
        let h = hyp(&[4, 5, 1], -2.0);
        assert!((summed_log_prob(&h, 1.0) + 6.0).abs() < 1e-9);
        assert!((summed_log_prob(&h, 0.0) + 2.0).abs() < 1e-9);
        let twice = (3.0f64).powf(2.0) * -2.0;
        assert!((summed_log_prob(&h, 2.0) - twice).abs() < 1e-9);
    }

    #[test]
    fn ties_and_short_lists_keep_the_beam_order() {
        assert_eq!(mbr_order(&[], |_, _| 0.0), Vec::<usize>::new());
        assert_eq!(mbr_order(&[-1.0], |_, _| 0.0), vec![0]);
        // Every pair alike and equally probable: the list's own order.
        assert_eq!(mbr_order(&[-1.0; 4], |_, _| 0.5), vec![0, 1, 2, 3]);
        // Two equal hypotheses outvote a third as probable as each.
        let list = [vec![5u32], vec![6], vec![6]];
        let order = mbr_order(&[-1.0; 3], |i, j| overlap(&list[i], &list[j]));
        assert_eq!(order, vec![1, 2, 0]);
    }
}
