//! Beam search with transformers' semantics (4.57's `_beam_search`), so the same model gives
//! the same tokens and `sequences_scores`.
//!
//! Each step scores every continuation of every running beam (its summed log-probability),
//! keeps the best `2 * num_beams`, and of those:
//! - the ones that end (the end token, or the length limit) and rank in the first `num_beams`
//!   join the finished hypotheses with their score divided by `length ** length_penalty`
//!   (`length`: new tokens, the end token included); the best `num_beams` finished are kept;
//! - the best `num_beams` that do not end run on.
//!
//! It stops when every candidate ends, when `early_stopping` is true and `num_beams`
//! hypotheses are finished, or when the best running beam cannot beat the worst finished one:
//! judged at its current length (`false`), or, with `"never"` and a positive length penalty,
//! at the longest length it could reach. Scores are f32 and the "impossible" marks are the
//! same `-1e9` transformers adds, so ties and their order come out as there.

use super::processors::{ban_repeated_ngrams, suppress_tokens};
use super::{EarlyStopping, GenerateError, GenerationConfig, Hypothesis, StepDecoder, log_softmax};

const IMPOSSIBLE: f32 = -1.0e9;

#[derive(Debug, Clone)]
struct Slot {
    sequence: Vec<u32>,
    score: f32,
    finished: bool,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    parent: usize,
    token: u32,
}

/// Indices of the `k` largest values, largest first; ties keep the lower index first.
fn top_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

fn penalty(length: usize, length_penalty: f32) -> f32 {
    (length as f64).powf(length_penalty as f64) as f32
}

/// Runs beam search for one source; returns `num_return_sequences` hypotheses, best first.
pub fn beam_search<D: StepDecoder + ?Sized>(
    decoder: &mut D,
    config: &GenerationConfig,
) -> Result<Vec<Hypothesis>, GenerateError> {
    let beams = config.num_beams;
    let keep = 2 * beams; // transformers: max(2, 1 + end tokens) * num_beams, one end token
    let vocab = decoder.vocab_size();
    let prompt = 1;
    let max_length = prompt + config.max_new_tokens;
    let lp = config.length_penalty;
    let start = config.decoder_start_token_id;

    let mut running = vec![vec![start]; beams];
    let mut running_scores = vec![IMPOSSIBLE; beams];
    running_scores[0] = 0.0;
    let mut parents: Vec<usize> = (0..beams).collect();
    let mut slots = vec![
        Slot {
            sequence: vec![start],
            score: IMPOSSIBLE,
            finished: false,
        };
        beams
    ];
    let mut improvable = true;
    let mut cur_len = prompt;
    loop {
        let logits = decoder.next_logits(&running, &parents)?;
        if logits.len() != beams || logits.iter().any(|row| row.len() != vocab) {
            return Err(GenerateError::Decoder(format!(
                "expected {beams} rows of {vocab} logits"
            )));
        }
        let mut accumulated = Vec::with_capacity(beams * vocab);
        for (r, row) in logits.iter().enumerate() {
            let mut lp_row = log_softmax(row);
            ban_repeated_ngrams(&running[r], config.no_repeat_ngram_size, &mut lp_row);
            suppress_tokens(&config.suppress_tokens, &mut lp_row);
            accumulated.extend(lp_row.into_iter().map(|x| x + running_scores[r]));
        }
        let candidates: Vec<Candidate> = top_indices(&accumulated, keep)
            .into_iter()
            .map(|i| Candidate {
                score: accumulated[i],
                parent: i / vocab,
                token: (i % vocab) as u32,
            })
            .collect();
        let ends: Vec<bool> = candidates
            .iter()
            .map(|c| c.token == config.eos_token_id || cur_len + 1 >= max_length)
            .collect();
        let extend = |c: &Candidate| {
            let mut s = running[c.parent].clone();
            s.push(c.token);
            s
        };

        // Finished hypotheses: the old ones and this step's ending candidates among the first
        // `num_beams`, the best `num_beams` of them kept.
        let all_finished = slots.iter().all(|s| s.finished);
        let length = penalty(cur_len + 1 - prompt, lp);
        let mut merged = slots.clone();
        for (i, c) in candidates.iter().enumerate() {
            let finishes = ends[i] && i < beams;
            let mut score = c.score / length;
            if all_finished && config.early_stopping == EarlyStopping::True {
                score += IMPOSSIBLE;
            }
            if !improvable {
                score += IMPOSSIBLE;
            }
            if !finishes {
                score += IMPOSSIBLE;
            }
            merged.push(Slot {
                sequence: extend(c),
                score,
                finished: finishes,
            });
        }
        let merged_scores: Vec<f32> = merged.iter().map(|s| s.score).collect();
        slots = top_indices(&merged_scores, beams)
            .into_iter()
            .map(|i| merged[i].clone())
            .collect();

        // Running beams: the best `num_beams` candidates that do not end.
        let run_scores: Vec<f32> = candidates
            .iter()
            .zip(&ends)
            .map(|(c, &e)| c.score + if e { IMPOSSIBLE } else { 0.0 })
            .collect();
        let next = top_indices(&run_scores, beams);
        running = next.iter().map(|&i| extend(&candidates[i])).collect();
        running_scores = next.iter().map(|&i| run_scores[i]).collect();
        parents = next.iter().map(|&i| candidates[i].parent).collect();
        cur_len += 1;

        // Can a running beam still beat the worst finished hypothesis?
        let hypothetical = if config.early_stopping == EarlyStopping::Never && lp > 0.0 {
            max_length - prompt
        } else {
            cur_len - prompt
        };
        let best_running = running_scores[0] / penalty(hypothetical, lp);
        let worst = slots.iter().map(|s| s.score).fold(f32::INFINITY, f32::min);
        improvable = improvable
            && slots
                .iter()
                .any(|s| best_running > if s.finished { worst } else { IMPOSSIBLE });
        let open =
            !(slots.iter().all(|s| s.finished) && config.early_stopping == EarlyStopping::True);
        let can_continue = !ends.iter().all(|&e| e);
        if !(improvable && open && can_continue) {
            break;
        }
    }
    Ok(slots
        .into_iter()
        .take(config.num_return_sequences)
        .map(|s| Hypothesis {
            tokens: s.sequence[1..].to_vec(),
            score: s.score,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::generate;
    use crate::decode::tests::Chain;

    /// From the start (0), token 2 looks best but leads to a flat distribution; token 3 is
    /// a little worse and then ends (1) almost surely.
    fn greedy_trap() -> Vec<Vec<f32>> {
        let ninf = -30.0;
        vec![
            vec![ninf, ninf, 1.0, 0.8, ninf, ninf],
            vec![0.0; 6],
            vec![ninf, 0.0, 0.0, 0.0, 0.0, 0.0],
            vec![ninf, 8.0, ninf, ninf, ninf, ninf],
            vec![ninf, 0.0, 0.0, 0.0, 0.0, 0.0],
            vec![ninf, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    }

    #[test]
    fn beams_escape_the_greedy_trap() {
        let mut chain = Chain(greedy_trap());
        let mut config = GenerationConfig {
            decoder_start_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 1,
            max_new_tokens: 5,
            length_penalty: 0.0,
            ..Default::default()
        };
        let greedy = generate(&mut chain, &config).unwrap();
        assert_eq!(greedy[0].tokens[0], 2);
        config.num_beams = 2;
        config.num_return_sequences = 2;
        let beams = generate(&mut chain, &config).unwrap();
        assert_eq!(beams[0].tokens, [3, 1]);
        assert!(beams[0].score > beams[1].score);
        assert!(beams[0].score > greedy[0].score);
    }

    #[test]
    fn suppressed_tokens_are_never_chosen_and_the_others_keep_their_log_probabilities() {
        let mut table = greedy_trap();
        table[2][4] = 0.2;
        let config = GenerationConfig {
            decoder_start_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 1,
            max_new_tokens: 5,
            length_penalty: 0.0,
            num_beams: 2,
            suppress_tokens: vec![3, 5],
            ..Default::default()
        };
        let beams = generate(&mut Chain(table.clone()), &config).unwrap();
        // Without the ban the best beam is [3, 1] (the test above).
        assert_eq!(beams[0].tokens[0], 2);
        assert!(beams[0].tokens.iter().all(|t| *t != 3 && *t != 5));
        // The score sums the model's own log-probabilities (the ban does not renormalize
        // them, as transformers applies it after the softmax).
        let mut previous = 0usize;
        let mut expected = 0.0f32;
        for &t in &beams[0].tokens {
            expected += crate::decode::log_softmax(&table[previous])[t as usize];
            previous = t as usize;
        }
        assert!(
            (beams[0].score - expected).abs() < 1e-5,
            "{beams:?} vs {expected}"
        );
        let greedy = generate(
            &mut Chain(table),
            &GenerationConfig {
                num_beams: 1,
                suppress_tokens: vec![2],
                ..config
            },
        )
        .unwrap();
        assert_eq!(greedy[0].tokens, [3, 1]);
    }
}
