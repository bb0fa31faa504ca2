//! What a pre-trained ViLT learned, on held-out captioned images: image-text matching AUC of
//! each image's caption against a hard negative (another caption of the same last word), and
//! the accuracy of predicting each masked caption word (articles aside) with the image beside
//! the same with a blank image: the gap is what the image contributes.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use mm_core::metrics::roc_auc;
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::ViltError;
use super::heads::Vilt;
use super::pretrain::CaptionSet;

/// Pre-training figures (`eval vilt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainReport {
    /// ITM AUC: matched captions against hard negatives.
    pub itm_auc: f64,
    /// Masked-word accuracy with the image.
    pub mlm_accuracy: f64,
    /// Masked-word accuracy with a blank image.
    pub mlm_blank_accuracy: f64,
    /// Held-out images.
    pub n_images: usize,
    /// Masked words scored.
    pub n_masked: usize,
}

const ARTICLES: [&str; 3] = ["a", "an", "the"];

fn tensors<B: Backend>(
    set: &CaptionSet,
    rows: &[(usize, Vec<u32>, usize)],
    blank: bool,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Tensor<B, 4>) {
    let (n, t, s) = (rows.len(), set.max_text, set.size);
    let mut ids = Vec::with_capacity(n * t);
    let mut mask = Vec::with_capacity(n * t);
    let mut pixels = Vec::with_capacity(n * 3 * s * s);
    for (image, tokens, real) in rows {
        ids.extend(tokens.iter().map(|&x| x as i64));
        mask.extend((0..t).map(|k| i64::from(k < *real)));
        if blank {
            pixels.extend(std::iter::repeat_n(0.0, 3 * s * s));
        } else {
            pixels.extend_from_slice(&set.images[*image]);
        }
    }
    (
        Tensor::from_data(TensorData::new(ids, [n, t]), device),
        Tensor::from_data(TensorData::new(mask, [n, t]), device),
        Tensor::from_data(TensorData::new(pixels, [n, 3, s, s]), device),
    )
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap_or_default()
}

/// Scores a model with ITM and MLM heads on held-out captioned images (`seed` picks the
/// negatives).
pub fn evaluate_pretraining<B: Backend>(
    model: &Vilt<B>,
    set: &CaptionSet,
    mask_id: u32,
    is_article: impl Fn(u32) -> bool,
    seed: u64,
    device: &B::Device,
) -> Result<PretrainReport, ViltError> {
    const CHUNK: usize = 128;
    let mut rng = SplitMix64::new(seed);
    // ITM: each image with its own caption and with a hard negative.
    let mut scores = [Vec::new(), Vec::new()];
    let itm_rows: Vec<(usize, usize)> = (0..set.images.len())
        .map(|i| (i, set.negative(i, &mut rng)))
        .collect();
    for (which, out) in scores.iter_mut().enumerate() {
        for part in itm_rows.chunks(CHUNK) {
            let rows: Vec<(usize, Vec<u32>, usize)> = part
                .iter()
                .map(|&(i, j)| {
                    let (tokens, real) = &set.captions[if which == 0 { i } else { j }];
                    (i, tokens.clone(), *real)
                })
                .collect();
            let (ids, mask, pixels) = tensors::<B>(set, &rows, false, device);
            let enc = model.encode(ids, mask, pixels)?;
            out.extend(host(model.itm_logits(&enc)?));
        }
    }
    // MLM: every caption word but the articles, masked one at a time.
    let mut masked_rows = Vec::new();
    for (i, (tokens, real)) in set.captions.iter().enumerate() {
        for k in 1..real.saturating_sub(1) {
            if !is_article(tokens[k]) {
                let mut hidden = tokens.clone();
                hidden[k] = mask_id;
                masked_rows.push((i, k, tokens[k], hidden));
            }
        }
    }
    let mut correct = [0usize; 2];
    for (b, blank) in [false, true].into_iter().enumerate() {
        for part in masked_rows.chunks(CHUNK) {
            let rows: Vec<(usize, Vec<u32>, usize)> = part
                .iter()
                .map(|(i, _, _, h)| (*i, h.clone(), set.captions[*i].1))
                .collect();
            let (ids, mask, pixels) = tensors::<B>(set, &rows, blank, device);
            let enc = model.encode(ids, mask, pixels)?;
            let best = model.mlm_logits(&enc)?.argmax(2); // [rows, text, 1]
            let best = best
                .into_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .unwrap_or_default();
            for (r, (_, k, truth, _)) in part.iter().enumerate() {
                if best[r * set.max_text + k] == *truth as i64 {
                    correct[b] += 1;
                }
            }
        }
    }
    let n = masked_rows.len().max(1) as f64;
    Ok(PretrainReport {
        itm_auc: roc_auc(&scores[0], &scores[1]),
        mlm_accuracy: correct[0] as f64 / n,
        mlm_blank_accuracy: correct[1] as f64 / n,
        n_images: set.images.len(),
        n_masked: masked_rows.len(),
    })
}

/// Whether a token id is an article ("a", "an", "the") of `tokenizer`.
pub fn article_ids(tokenizer: &mm_text::WordPieceTokenizer) -> impl Fn(u32) -> bool + '_ {
    move |id| tokenizer.token(id).is_some_and(|t| ARTICLES.contains(&t))
}
