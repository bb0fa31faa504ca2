//! What is done to a row's scores before a token is picked, as transformers' logits
//! processors do it: `no_repeat_ngram_size` bans and `suppress_tokens`, then (sampling)
//! temperature, top-k and top-p. A banned or filtered token's score becomes `-inf`.

/// Bans every token that would complete an n-gram of size `n` already in `sequence` (the
/// start token counts, as in transformers, whose decoder inputs begin with it).
pub fn ban_repeated_ngrams(sequence: &[u32], n: usize, scores: &mut [f32]) {
    let len = sequence.len();
    if n == 0 || len + 1 < n {
        return;
    }
    let prefix = &sequence[len + 1 - n..];
    for start in 0..=len.saturating_sub(n) {
        if start + n > len {
            break;
        }
        let gram = &sequence[start..start + n];
        if &gram[..n - 1] == prefix
            && let Some(s) = scores.get_mut(gram[n - 1] as usize)
        {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// Sets the score of every token of `suppressed` to `-inf` (ids outside `scores` are ignored;
/// [`super::GenerationConfig::validate`] refuses them first).
pub fn suppress_tokens(suppressed: &[u32], scores: &mut [f32]) {
    for &t in suppressed {
        if let Some(s) = scores.get_mut(t as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// Divides the logits by `temperature`.
pub fn apply_temperature(logits: &mut [f32], temperature: f32) {
    if temperature != 1.0 {
        logits.iter_mut().for_each(|x| *x /= temperature);
    }
}

/// Keeps the `k` highest logits (and any tied with the k-th); `k == 0` keeps all.
pub fn apply_top_k(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    logits
        .iter_mut()
        .filter(|x| **x < kth)
        .for_each(|x| *x = f32::NEG_INFINITY);
}

/// Keeps the smallest set of most likely tokens whose probability reaches `p` (at least one):
/// a token goes when the probability mass of the tokens less likely than or as likely as it,
/// itself included, is at most `1 - p` (transformers' `TopPLogitsWarper`).
pub fn apply_top_p(logits: &mut [f32], p: f32) {
    if p >= 1.0 {
        return;
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b])); // ascending
    let probs = softmax(logits);
    let mut cumulative = 0.0f32;
    let last = order.len() - 1;
    for (rank, &i) in order.iter().enumerate() {
        cumulative += probs[i];
        if cumulative <= 1.0 - p && rank < last {
            logits[i] = f32::NEG_INFINITY;
        }
    }
}

/// Probabilities of a row of logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_bigram_is_banned() {
        // start 2, then 5 7 5: the bigram (5, 7) exists, so after 5 the token 7 is banned.
        let mut scores = vec![0.0; 10];
        ban_repeated_ngrams(&[2, 5, 7, 5], 2, &mut scores);
        assert_eq!(scores[7], f32::NEG_INFINITY);
        assert_eq!(scores.iter().filter(|s| s.is_infinite()).count(), 1);
        // Too short for a trigram: nothing banned.
        let mut scores = vec![0.0; 10];
        ban_repeated_ngrams(&[2], 3, &mut scores);
        assert!(scores.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn top_k_and_top_p_keep_the_likely_tokens() {
        let mut l = vec![1.0, 4.0, 3.0, 2.0];
        apply_top_k(&mut l, 2);
        assert_eq!(l, [f32::NEG_INFINITY, 4.0, 3.0, f32::NEG_INFINITY]);
        // Probabilities about 0.64, 0.24, 0.09, 0.03: top-p 0.7 keeps the first two.
        let mut l = vec![4.0, 3.0, 2.0, 1.0];
        apply_top_p(&mut l, 0.7);
        assert!(l[0].is_finite() && l[1].is_finite());
        assert!(l[2].is_infinite() && l[3].is_infinite());
        // A tiny p keeps the single best token.
        let mut l = vec![4.0, 3.0, 2.0, 1.0];
        apply_top_p(&mut l, 1e-6);
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 1);
    }
}
