//! The teacher-forced phase's batches: each step draws images (each source equally often, so
//! the small stamp set is not drowned, unless `source_weights` says otherwise: [`SourceDraw`],
//! which the self-critical phase draws through too), one of each image's references at
//! random, a shift of a few pixels, with `augment` set a colour or flip draw
//! (`mm_vl::augment`) and with `word_dropout` set the decoder's input words to mask, all from
//! the step's own seeded streams, so a resumed run sees the same batches.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use mm_core::train::{BatchSource, StepInfo, TrainError};
use mm_data::rng::SplitMix64;
use mm_text::WordPieceTokenizer;
use mm_vl::augment::ColourAugment;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::data::CaptionSet;
use super::train::CaptionTrainConfig;

/// A training batch: pixels, the caption tokens in (`[CLS] w1 .. wn`) and the tokens out
/// (`w1 .. wn [SEP]`), padded.
#[derive(Debug, Clone)]
pub struct CaptionBatch<B: Backend> {
    /// `[rows, 3, size, size]`.
    pub pixels: Tensor<B, 4>,
    /// `[rows, tokens]`.
    pub inputs: Tensor<B, 2, Int>,
    /// `[rows, tokens]`, padding where nothing is predicted.
    pub targets: Tensor<B, 2, Int>,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Draws [`CaptionBatch`]es from a [`CaptionSet`].
pub struct CaptionBatches {
    set: Arc<CaptionSet>,
    /// `[CLS] .. [SEP] [PAD]..` ids of every reference of every image.
    tokens: Vec<Vec<Vec<u32>>>,
    draw: SourceDraw,
    batch: usize,
    seed: u64,
    max_shift: u32,
    augment: ColourAugment,
    word_dropout: f32,
    /// `[MASK]` and `[PAD]`: what a dropped word becomes, and what is never dropped.
    mask: i64,
    pad: i64,
}

impl CaptionBatches {
    /// Tokenizes every reference to `max_tokens` (longer ones are cut, keeping `[SEP]`); the
    /// batch size, seed, shift, augmentation and source weights come from `config`. A weight
    /// for a source the set does not have, or a negative or non-finite one, is refused.
    pub fn new(
        set: Arc<CaptionSet>,
        tokenizer: &WordPieceTokenizer,
        max_tokens: usize,
        config: &CaptionTrainConfig,
    ) -> Result<Self, TrainError> {
        let mut tokens = Vec::with_capacity(set.len());
        for refs in &set.captions {
            let mut row = Vec::new();
            for r in refs {
                let (ids, _) = tokenizer
                    .encode(r, max_tokens)
                    .map_err(|e| TrainError::Settings(format!("caption {r:?}: {e}")))?;
                row.push(ids);
            }
            tokens.push(row);
        }
        let draw = SourceDraw::new(&set, &config.source_weights)?;
        Ok(Self {
            tokens,
            draw,
            set,
            batch: config.batch,
            seed: config.seed,
            max_shift: config.max_shift,
            augment: config.augment,
            word_dropout: config.word_dropout,
            mask: tokenizer.mask as i64,
            pad: tokenizer.pad as i64,
        })
    }
}

impl<B: Backend> BatchSource<B> for CaptionBatches {
    type Batch = CaptionBatch<B>;

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> CaptionBatch<B> {
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let mut below = |n: usize| (rng.next_u64() % n as u64) as usize;
        let mut picks = Vec::with_capacity(self.batch);
        let mut shifts = Vec::with_capacity(self.batch);
        let m = self.max_shift as usize;
        for _ in 0..self.batch {
            let source = self.draw.pick(&mut below);
            let image = source[below(source.len())];
            let caption = below(self.tokens[image].len());
            let dx = below(2 * m + 1) as i64 - m as i64;
            let dy = below(2 * m + 1) as i64 - m as i64;
            picks.push((image, caption));
            shifts.push((dx, dy));
        }
        // A stream of its own, drawn from only when augmenting: runs without augmentation see
        // the same batches as before it existed.
        let mut colour_rng =
            StdRng::seed_from_u64(self.seed ^ (0xc0_10_u64 << 32) ^ at.step as u64);
        let draws = self.augment.draw(&mut colour_rng, self.batch);
        let width = self.tokens[0][0].len() - 1;
        let dropped = self.dropped_words(at.step, width);
        let rows = at.share.rows(self.batch);
        let picks = &picks[rows.clone()];
        let images: Vec<usize> = picks.iter().map(|p| p.0).collect();
        let pixels = self
            .set
            .pixels_augmented(&images, &shifts[rows.clone()], &draws[rows.clone()])
            .to_tensor(device);
        let mut inputs = Vec::with_capacity(picks.len() * width);
        let mut targets = Vec::with_capacity(picks.len() * width);
        for (&(i, c), drop) in picks
            .iter()
            .zip(dropped[rows.start * width..rows.end * width].chunks(width))
        {
            let ids = &self.tokens[i][c];
            inputs.extend(
                ids[..width]
                    .iter()
                    .zip(drop)
                    .enumerate()
                    .map(|(t, (&x, &d))| {
                        let x = x as i64;
                        // `[CLS]` starts every caption and padding is never a word.
                        if d && t > 0 && x != self.pad {
                            self.mask
                        } else {
                            x
                        }
                    }),
            );
            targets.extend(ids[1..].iter().map(|&x| x as i64));
        }
        let n = picks.len();
        CaptionBatch {
            pixels,
            inputs: Tensor::from_data(TensorData::new(inputs, [n, width]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, width]), device),
            at,
        }
    }
}

impl CaptionBatches {
    /// Which input positions of the whole step's batch (`batch` rows of `width`, row-major)
    /// word dropout masks, from a stream of its own drawn from only when it is on, so runs
    /// without it see the same batches as before it existed; every device's share of a step
    /// cuts its rows from the same draw.
    fn dropped_words(&self, step: usize, width: usize) -> Vec<bool> {
        if self.word_dropout <= 0.0 {
            return vec![false; self.batch * width];
        }
        let mut rng = SplitMix64::stream(self.seed ^ (0x3a5c_u64 << 40), step as u64);
        let p = f64::from(self.word_dropout);
        (0..self.batch * width).map(|_| rng.uniform() < p).collect()
    }
}

/// Which images a step draws from, and how often: the images of each source that has any
/// and a weight above 0 (`source_weights`; absent: 1), and the running sums of those weights.
/// Both training phases draw through it, a source first, then one of its images.
#[derive(Debug, Clone)]
pub struct SourceDraw {
    by_source: Vec<Vec<usize>>,
    /// `None` when every weight is the same, so such runs draw exactly as before weights
    /// existed.
    cumulative: Option<Vec<f64>>,
}

impl SourceDraw {
    /// The draw of `set` under `weights`; a weight for a source the set does not have, a
    /// negative or non-finite one, or no source left to draw is refused.
    pub fn new(set: &CaptionSet, weights: &BTreeMap<String, f64>) -> Result<Self, TrainError> {
        for (name, &w) in weights {
            if !set.sources.contains(name) {
                return Err(TrainError::Settings(format!(
                    "source_weights names `{name}`, which is not a training source (they are: {})",
                    set.sources.join(", ")
                )));
            }
            if !(w.is_finite() && w >= 0.0) {
                return Err(TrainError::Settings(format!(
                    "source_weights.{name} must be a finite number >= 0, not {w}"
                )));
            }
        }
        let mut by_source = Vec::new();
        let mut drawn = Vec::new();
        for (name, images) in set.sources.iter().zip(set.by_source()) {
            let w = weights.get(name).copied().unwrap_or(1.0);
            if !images.is_empty() && w > 0.0 {
                by_source.push(images);
                drawn.push(w);
            }
        }
        if by_source.is_empty() {
            return Err(TrainError::Settings(
                "no training source has both images and a weight above 0".into(),
            ));
        }
        let equal = drawn.iter().all(|&w| w == drawn[0]);
        let sums = drawn
            .iter()
            .scan(0.0, |acc, &w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        Ok(Self {
            by_source,
            cumulative: (!equal).then_some(sums),
        })
    }

    /// The images of one source, drawn with one call of `below(n)` (a number below `n`).
    pub fn pick(&self, below: &mut impl FnMut(usize) -> usize) -> &[usize] {
        let index = match &self.cumulative {
            None => below(self.by_source.len()),
            Some(sums) => {
                let total = sums[sums.len() - 1];
                // The same one draw from the stream as the equal case makes.
                let u = below(1 << 53) as f64 / (1u64 << 53) as f64 * total;
                sums.iter().position(|&s| u < s).unwrap_or(sums.len() - 1)
            }
        };
        &self.by_source[index]
    }
}
