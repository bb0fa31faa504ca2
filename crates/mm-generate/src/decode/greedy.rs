//! Greedy decoding and seeded sampling: one sequence, one token at a time, until the end
//! token or `max_new_tokens` (transformers' `_sample` with `do_sample` false or true).

use mm_data::rng::SplitMix64;

use super::processors::{
    apply_temperature, apply_top_k, apply_top_p, ban_repeated_ngrams, softmax, suppress_tokens,
};
use super::{GenerateError, GenerationConfig, Hypothesis, StepDecoder, log_softmax};

/// Decodes one sequence greedily, or by sampling when `config.do_sample`. The score is the
/// summed log-probability of the chosen tokens under the model (after the n-gram bans and
/// `suppress_tokens`).
pub fn greedy_or_sample<D: StepDecoder + ?Sized>(
    decoder: &mut D,
    config: &GenerationConfig,
) -> Result<Hypothesis, GenerateError> {
    let mut sequence = vec![config.decoder_start_token_id];
    let mut rng = SplitMix64::new(config.seed);
    let mut score = 0.0f32;
    for step in 0..config.max_new_tokens {
        let rows = [sequence.clone()];
        let mut logits = decoder
            .next_logits(&rows, &[0])?
            .pop()
            .ok_or_else(|| GenerateError::Decoder("no logits".into()))?;
        ban_repeated_ngrams(&sequence, config.no_repeat_ngram_size, &mut logits);
        suppress_tokens(&config.suppress_tokens, &mut logits);
        let log_probs = log_softmax(&logits);
        let token = if config.do_sample {
            sample(&mut logits, config, &mut rng)
        } else {
            argmax(&logits)
        };
        let _ = step;
        score += log_probs[token];
        sequence.push(token as u32);
        if token as u32 == config.eos_token_id {
            break;
        }
    }
    Ok(Hypothesis {
        tokens: sequence[1..].to_vec(),
        score,
    })
}

/// The index of the largest value (the first of ties, as `torch.argmax`).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

fn sample(logits: &mut [f32], config: &GenerationConfig, rng: &mut SplitMix64) -> usize {
    apply_temperature(logits, config.temperature);
    apply_top_k(logits, config.top_k);
    apply_top_p(logits, config.top_p);
    let probs = softmax(logits);
    let u = rng.uniform() as f32;
    let mut cumulative = 0.0;
    let mut last_possible = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            last_possible = i;
            cumulative += p;
            if u <= cumulative {
                return i;
            }
        }
    }
    last_possible
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::generate;
    use crate::decode::tests::Chain;

    fn chain() -> Chain {
        // 0 start, 1 end, 2..4 words: 0 -> 2 -> 3 -> 1 greedily.
        Chain(vec![
            vec![-9.0, -9.0, 2.0, 1.0, 0.0],
            vec![0.0; 5],
            vec![-9.0, 0.0, -1.0, 3.0, 1.0],
            vec![-9.0, 2.0, 1.0, -1.0, 0.0],
            vec![-9.0, 1.0, 1.0, 1.0, -9.0],
        ])
    }

    fn config() -> GenerationConfig {
        GenerationConfig {
            decoder_start_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 1,
            max_new_tokens: 8,
            ..Default::default()
        }
    }

    #[test]
    fn greedy_follows_the_best_token_to_the_end() {
        let h = generate(&mut chain(), &config()).unwrap();
        assert_eq!(h[0].tokens, [2, 3, 1]);
        let c = chain();
        let expect = log_softmax(&c.0[0])[2] + log_softmax(&c.0[2])[3] + log_softmax(&c.0[3])[1];
        assert!((h[0].score - expect).abs() < 1e-6);
    }

    #[test]
    fn sampling_is_seeded_and_stays_in_the_top_k() {
        let mut c = config();
        c.do_sample = true;
        c.top_k = 2;
        c.seed = 7;
        let a = generate(&mut chain(), &c).unwrap();
        let b = generate(&mut chain(), &c).unwrap();
        assert_eq!(a, b);
        // From the start token only tokens 2 and 3 are in the top 2.
        assert!([2, 3].contains(&a[0].tokens[0]));
        // Different seeds explore different sequences.
        let distinct: std::collections::BTreeSet<Vec<u32>> = (0..20)
            .map(|seed| {
                c.seed = seed;
                generate(&mut chain(), &c).unwrap()[0].tokens.clone()
            })
            .collect();
        assert!(distinct.len() > 1);
    }
}
