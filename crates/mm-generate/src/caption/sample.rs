//! Many captions sampled at once: every image of a batch, several times each, decoded in
//! lockstep through the key/value cache (one decoder call per token for all rows). Self-critical
//! training draws its captions here; [`crate::decode`] stays the one-image interface with
//! transformers' semantics.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use mm_data::rng::SplitMix64;

use super::model::Captioner;
use crate::decode::processors::{apply_temperature, softmax};
use crate::decode::{GenerateError, greedy::argmax};

/// How [`sample_captions`] picks each token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    /// The most probable token (greedy decoding, every row the same for one image).
    Greedy,
    /// A token drawn from the softmax of the logits divided by this temperature.
    Sample(f32),
}

/// The encoder's tokens of each image repeated `copies` times, image by image:
/// `[batch, tokens, hidden]` to `[batch * copies, tokens, hidden]`.
pub fn repeat_rows<B: Backend>(memory: Tensor<B, 3>, copies: usize) -> Tensor<B, 3> {
    let [b, t, h] = memory.dims();
    memory
        .unsqueeze_dim::<4>(1)
        .expand([b, copies, t, h])
        .reshape([b * copies, t, h])
}

/// Decodes `copies` captions of each image of `pixels` (`[batch, 3, size, size]`); row
/// `i * copies + j` is image `i`'s `j`-th. Each caption is its new tokens, the end token
/// included when it came before `max_new_tokens`.
pub fn sample_captions<B: Backend>(
    model: &Captioner<B>,
    pixels: Tensor<B, 4>,
    copies: usize,
    max_new_tokens: usize,
    pick: Pick,
    (start, eos): (u32, u32),
    rng: &mut SplitMix64,
) -> Result<Vec<Vec<u32>>, GenerateError> {
    model
        .encoder
        .check_pixels(pixels.dims())
        .map_err(|e| GenerateError::Config(e.0))?;
    if copies == 0 {
        return Err(GenerateError::Config(
            "asked for 0 captions per image".into(),
        ));
    }
    if max_new_tokens + 1 > model.decoder.max_positions() {
        return Err(GenerateError::Config(format!(
            "max_new_tokens {max_new_tokens} is more than the decoder's {} positions allow",
            model.decoder.max_positions()
        )));
    }
    let device = pixels.device();
    let memory = repeat_rows(model.encode(pixels), copies);
    let rows = memory.dims()[0];
    let cross = model.decoder.cross_key_values(memory);
    let mut cache = None;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); rows];
    let mut done = vec![false; rows];
    let mut last = vec![start as i64; rows];
    for _ in 0..max_new_tokens {
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(last.clone(), [rows, 1]), &device);
        let logits = model.decoder.forward_cached(ids, &cross, &mut cache);
        let vocab = logits.dims()[2];
        let flat = logits
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| GenerateError::Decoder(format!("{e:?}")))?;
        for (r, row) in flat.chunks(vocab).enumerate() {
            if done[r] {
                continue;
            }
            let token = match pick {
                Pick::Greedy => argmax(row),
                Pick::Sample(t) => draw(row, t, rng),
            } as u32;
            out[r].push(token);
            last[r] = token as i64;
            done[r] = token == eos;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(out)
}

/// A token drawn from `softmax(logits / temperature)`.
fn draw(logits: &[f32], temperature: f32, rng: &mut SplitMix64) -> usize {
    let mut scaled = logits.to_vec();
    apply_temperature(&mut scaled, temperature);
    let probs = softmax(&scaled);
    let u = rng.uniform() as f32 * probs.iter().sum::<f32>();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}
