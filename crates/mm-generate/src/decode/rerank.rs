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

    /// [`mbr_order`] of beam search's hypotheses decoded at `length_penalty`, by `overlap`.
    fn order(list: &[Hypothesis], length_penalty: f32) -> Vec<usize> {
        let log_probs: Vec<f64> = list
            .iter()
            .map(|h| summed_log_prob(h, length_penalty))
            .collect();
        mbr_order(&log_probs, |i, j| overlap(&list[i].tokens, &list[j].tokens))
    }

    #[test]
    fn an_outlier_gives_way_to_what_the_others_agree_on_unless_it_is_near_certain() {
        // The most probable hypothesis shares nothing with the other three, which share most
        // of their tokens and together hold more of the mass: the one closest to both others
        // comes first, and the outlier last.
        let mut list = vec![
            hyp(&[9, 8, 7, 6, 5], -1.0),
            hyp(&[1, 2, 3], -1.5),
            hyp(&[1, 2], -1.6),
            hyp(&[1, 2, 4], -1.7),
        ];
        assert_eq!(order(&list, 0.0), vec![1, 2, 3, 0]);
        // Under length penalty 1 the scores are per-token means (summed: -5, -4.5, -3.2,
        // -5.1): the outlier, sharing nothing, is still last.
        assert_eq!(order(&list, 1.0)[3], 0);
        // When the outlier holds nearly all the mass, beam search's order stands.
        list[0].score = -0.01;
        for h in &mut list[1..] {
            h.score -= 8.0;
        }
        assert_eq!(order(&list, 0.0)[0], 0);
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
