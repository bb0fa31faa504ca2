//! ViLT pre-training on captioned images: image-text matching against hard negatives (another
//! caption of the same last word, i.e. the same shape in another colour on easy-VQA) plus
//! masked language modelling of the matched captions; and the two figures that show the image
//! is used: ITM AUC on held-out pairs, and masked-word accuracy with the image beside a blank
//! one.

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use mm_core::train::{BatchSource, StepInfo, StepOutput};
use mm_data::manifest::{ImageCaption, Manifest};
use mm_data::rng::SplitMix64;
use mm_text::WordPieceTokenizer;
use mm_vision::load_image;
use serde::{Deserialize, Serialize};

use super::ViltError;
use super::heads::Vilt;
use crate::vqa::data::normalize_with;

/// Captioned images in memory: normalized pixels and tokenized captions.
#[derive(Debug, Clone)]
pub struct CaptionSet {
    /// `[3, size, size]` pixels of each image.
    pub images: Vec<Vec<f32>>,
    /// Each image's caption as ids (padded) and its real length.
    pub captions: Vec<(Vec<u32>, usize)>,
    /// The caption texts.
    pub texts: Vec<String>,
    /// For each image, the images whose caption ends in the same word but differs (its hard
    /// negatives; empty when there is none, then any other caption is used).
    pub hard: Vec<Vec<usize>>,
    /// Image side length.
    pub size: usize,
    /// Tokens per caption.
    pub max_text: usize,
}

impl CaptionSet {
    /// Builds the set from images and their captions.
    pub fn new(
        images: Vec<Vec<f32>>,
        texts: Vec<String>,
        tokenizer: &WordPieceTokenizer,
        size: usize,
        max_text: usize,
    ) -> Result<Self, ViltError> {
        if images.len() != texts.len() || images.len() < 2 {
            return Err(ViltError::Input(format!(
                "{} images and {} captions: pre-training needs at least 2 captioned images",
                images.len(),
                texts.len()
            )));
        }
        let captions = texts
            .iter()
            .map(|t| tokenizer.encode(t, max_text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ViltError::Input(e.to_string()))?;
        let mut by_last: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, t) in texts.iter().enumerate() {
            by_last
                .entry(t.split_whitespace().last().unwrap_or(""))
                .or_default()
                .push(i);
        }
        let hard = texts
            .iter()
            .map(|t| {
                by_last[t.split_whitespace().last().unwrap_or("")]
                    .iter()
                    .copied()
                    .filter(|&j| texts[j] != *t)
                    .collect()
            })
            .collect();
        Ok(CaptionSet {
            images,
            captions,
            texts,
            hard,
            size,
            max_text,
        })
    }

    /// The images of `split` in an image-caption manifest (each with its first caption),
    /// normalized with `mean_std`.
    pub fn from_manifest(
        manifest: &std::path::Path,
        split: &str,
        tokenizer: &WordPieceTokenizer,
        size: usize,
        max_text: usize,
        (mean, std): ([f32; 3], [f32; 3]),
    ) -> Result<Self, ViltError> {
        let m = Manifest::<ImageCaption>::read(manifest)
            .map_err(|e| ViltError::Input(e.to_string()))?;
        let mut images = Vec::new();
        let mut texts = Vec::new();
        for r in m
            .records
            .iter()
            .filter(|r| r.split.as_deref() == Some(split))
        {
            let img =
                load_image(m.resolve(&r.image)).map_err(|e| ViltError::Input(e.to_string()))?;
            images.push(normalize_with(&img, size, mean, std));
            texts.push(r.captions[0].clone());
        }
        if images.is_empty() {
            return Err(ViltError::Input(format!(
                "{}: no captioned images of split `{split}`",
                manifest.display()
            )));
        }
        Self::new(images, texts, tokenizer, size, max_text)
    }

    /// A hard negative caption for image `i` (one that differs from its own).
    pub fn negative(&self, i: usize, rng: &mut SplitMix64) -> usize {
        let hard = &self.hard[i];
        if !hard.is_empty() {
            return hard[(rng.next_u64() % hard.len() as u64) as usize];
        }
        loop {
            let j = (rng.next_u64() % self.texts.len() as u64) as usize;
            if self.texts[j] != self.texts[i] || self.texts.len() < 2 {
                return j;
            }
        }
    }
}

/// Settings of the pre-training batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainSettings {
    /// Images per step (each gives a matched and a mismatched pair).
    pub batch: usize,
    /// Probability of masking each caption token (at least one is masked).
    pub mask_prob: f64,
}

/// A pre-training batch: `2 * rows` pairs, matched first, then mismatched.
#[derive(Debug, Clone)]
pub struct PretrainBatch<B: Backend> {
    /// `[2 rows, 3, size, size]`.
    pub pixels: Tensor<B, 4>,
    /// Masked caption ids, `[2 rows, max_text]`.
    pub ids: Tensor<B, 2, Int>,
    /// Attention mask, `[2 rows, max_text]`.
    pub mask: Tensor<B, 2, Int>,
    /// 1 for matched pairs, 0 for mismatched, `[2 rows]`.
    pub matched: Tensor<B, 1>,
    /// One-hot targets of the masked tokens of the matched pairs, `[rows, max_text, vocab]`.
    pub mlm_targets: Tensor<B, 3>,
    /// Masked tokens in the batch (the MLM loss's divisor).
    pub masked: usize,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Draws each step's images at random (seeded by the step).
pub struct PretrainBatches {
    /// The captioned images.
    pub set: Arc<CaptionSet>,
    /// Batch settings.
    pub settings: PretrainSettings,
    /// `[MASK]`'s id.
    pub mask_id: u32,
    /// Vocabulary size.
    pub vocab: usize,
    /// Seed.
    pub seed: u64,
}

impl<B: Backend> BatchSource<B> for PretrainBatches {
    type Batch = PretrainBatch<B>;

    fn batch_size(&self) -> usize {
        self.settings.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> PretrainBatch<B> {
        let s = &self.set;
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let picks: Vec<(usize, usize)> = (0..self.settings.batch)
            .map(|_| {
                let i = (rng.next_u64() % s.images.len() as u64) as usize;
                (i, s.negative(i, &mut rng))
            })
            .collect();
        let rows = &picks[at.share.rows(self.settings.batch)];
        let (n, t, v) = (rows.len(), s.max_text, self.vocab);
        let mut pixels = Vec::with_capacity(2 * n * 3 * s.size * s.size);
        let mut ids = Vec::with_capacity(2 * n * t);
        let mut mask = Vec::with_capacity(2 * n * t);
        let mut targets = vec![0f32; n * t * v];
        let mut masked = 0;
        for pass in 0..2 {
            for (row, &(image, negative)) in rows.iter().enumerate() {
                pixels.extend_from_slice(&s.images[image]);
                let caption = if pass == 0 { image } else { negative };
                let (tokens, real) = &s.captions[caption];
                // Content tokens sit between [CLS] and [SEP].
                let content: Vec<usize> = (1..real.saturating_sub(1)).collect();
                let mut chosen: Vec<usize> = content
                    .iter()
                    .copied()
                    .filter(|_| rng.uniform() <= self.settings.mask_prob)
                    .collect();
                if chosen.is_empty() && !content.is_empty() {
                    chosen.push(content[(rng.next_u64() % content.len() as u64) as usize]);
                }
                for (k, &id) in tokens.iter().enumerate() {
                    let hidden = chosen.contains(&k);
                    ids.push(if hidden {
                        self.mask_id as i64
                    } else {
                        id as i64
                    });
                    mask.push(i64::from(k < *real));
                    if hidden && pass == 0 {
                        targets[(row * t + k) * v + id as usize] = 1.0;
                        masked += 1;
                    }
                }
            }
        }
        let matched: Vec<f32> = (0..2 * n).map(|i| f32::from(i < n)).collect();
        PretrainBatch {
            pixels: Tensor::from_data(TensorData::new(pixels, [2 * n, 3, s.size, s.size]), device),
            ids: Tensor::from_data(TensorData::new(ids, [2 * n, t]), device),
            mask: Tensor::from_data(TensorData::new(mask, [2 * n, t]), device),
            matched: Tensor::from_data(TensorData::new(matched, [2 * n]), device),
            mlm_targets: Tensor::from_data(TensorData::new(targets, [n, t, v]), device),
            masked,
            at,
        }
    }
}

/// The ViLT being pre-trained (a wrapper so its training step is the pre-training one).
#[derive(Module, Debug)]
pub struct Pretraining<B: Backend> {
    /// The model, with ITM and MLM heads.
    pub vilt: Vilt<B>,
    /// Weight of the MLM loss.
    #[module(skip)]
    pub mlm_weight: f64,
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap_or_default()
        .first()
        .copied()
        .unwrap_or(f64::NAN)
}

impl<B: Backend> Pretraining<B> {
    /// The ITM + weighted MLM loss of a batch, with its figures.
    pub fn loss(&self, batch: &PretrainBatch<B>) -> Result<(Tensor<B, 1>, StepOutput), ViltError> {
        let out = self
            .vilt
            .encode(batch.ids.clone(), batch.mask.clone(), batch.pixels.clone())?;
        let [pairs] = batch.matched.dims();
        let logit = self.vilt.itm_logits(&out)?.reshape([pairs]);
        let y = batch.matched.clone();
        // Binary cross-entropy with logits: -(y log s(x) + (1 - y) log s(-x)).
        let itm = (y.clone() * log_sigmoid(logit.clone())
            + (y.clone().neg() + 1.0) * log_sigmoid(logit.clone().neg()))
        .mean()
        .neg();
        let itm_correct = scalar(logit.greater_elem(0.0).float().equal(y).float().mean());
        let rows = pairs / 2;
        let mlm_logits = self.vilt.mlm_logits(&out)?.narrow(0, 0, rows); // [rows, text, vocab]
        let mlm = (log_softmax(mlm_logits, 2) * batch.mlm_targets.clone())
            .sum()
            .neg()
            / batch.masked.max(1) as f64;
        let (itm_value, mlm_value) = (scalar(itm.clone()), scalar(mlm.clone()));
        let loss = itm + mlm * self.mlm_weight;
        let output = batch
            .at
            .output(scalar(loss.clone()))
            .with("itm_loss", itm_value)
            .with("mlm_loss", mlm_value)
            .with("itm_accuracy", itm_correct);
        Ok((loss, output))
    }
}
