//! Training batches for a pixel-space text-to-image model: captioned images (a [`CaptionSet`]
//! whose processor maps pixels to [-1, 1]), the frozen text tower's token states of every
//! caption computed once, and per step the noised images, their timesteps, the states to
//! attend to (the empty prompt's in place of the caption's for the conditioning-dropout
//! fraction) and the target the UNet must predict.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use mm_core::train::{BatchSource, StepInfo, TrainError};
use mm_data::rng::SplitMix64;

use super::super::NoiseSchedule;
use super::super::config::PredictionType;
use super::super::text::TextConditioner;
use crate::caption::CaptionSet;

/// Every distinct caption of a set with its token states, the empty prompt first.
#[derive(Debug, Clone)]
pub struct PromptStates {
    /// The prompts; index 0 is `""`.
    pub prompts: Vec<String>,
    /// `[prompts, tokens, width]` token states, row-major.
    pub states: Vec<f32>,
    /// Tokens per prompt.
    pub tokens: usize,
    /// Width of a token state.
    pub width: usize,
}

impl PromptStates {
    /// Encodes `""` and every caption of `set` with `text` (in chunks of 64 prompts).
    pub fn encode<B: Backend>(
        set: &CaptionSet,
        text: &TextConditioner<B>,
    ) -> Result<(Self, Vec<Vec<usize>>), TrainError> {
        let mut index = BTreeMap::new();
        let mut prompts = vec![String::new()];
        index.insert(String::new(), 0);
        let mut of_image = Vec::with_capacity(set.len());
        for refs in &set.captions {
            let ids = refs
                .iter()
                .map(|r| {
                    *index.entry(r.clone()).or_insert_with(|| {
                        prompts.push(r.clone());
                        prompts.len() - 1
                    })
                })
                .collect();
            of_image.push(ids);
        }
        let mut states = Vec::new();
        let (mut tokens, mut width) = (0, 0);
        for chunk in prompts.chunks(64) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let out = text
                .encode(&refs)
                .map_err(|e| TrainError::Settings(format!("a caption cannot be tokenized: {e}")))?;
            [_, tokens, width] = out.dims();
            states.extend(
                out.into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .map_err(|e| {
                        TrainError::Settings(format!("text states cannot be read: {e:?}"))
                    })?,
            );
        }
        let encoded = Self {
            prompts,
            states,
            tokens,
            width,
        };
        Ok((encoded, of_image))
    }

    /// The states of `rows` (prompt indices) as a `[rows, tokens, width]` tensor.
    pub fn gather<B: Backend>(&self, rows: &[usize], device: &B::Device) -> Tensor<B, 3> {
        let size = self.tokens * self.width;
        let mut out = Vec::with_capacity(rows.len() * size);
        for &r in rows {
            out.extend_from_slice(&self.states[r * size..(r + 1) * size]);
        }
        Tensor::from_data(
            TensorData::new(out, [rows.len(), self.tokens, self.width]),
            device,
        )
    }
}

/// `set` without the images that any of `prompts` captions.
pub fn without_prompts(set: CaptionSet, prompts: &[String]) -> CaptionSet {
    if prompts.is_empty() {
        return set;
    }
    let keep: Vec<bool> = set
        .captions
        .iter()
        .map(|refs| !refs.iter().any(|r| prompts.contains(r)))
        .collect();
    fn pick<T>(v: Vec<T>, keep: &[bool]) -> Vec<T> {
        v.into_iter()
            .zip(keep)
            .filter_map(|(x, &k)| k.then_some(x))
            .collect()
    }
    CaptionSet {
        images: pick(set.images, &keep),
        captions: pick(set.captions, &keep),
        source: pick(set.source, &keep),
        paths: pick(set.paths, &keep),
        ..set
    }
}

/// One training step's share: what goes into the UNet and what should come out.
#[derive(Debug, Clone)]
pub struct DiffusionBatch<B: Backend> {
    /// Noised images `[rows, 3, h, w]`.
    pub noisy: Tensor<B, 4>,
    /// Their timesteps `[rows]`.
    pub timesteps: Tensor<B, 1>,
    /// Token states to attend to `[rows, tokens, width]`.
    pub context: Tensor<B, 3>,
    /// The prediction target (the noise, or v) `[rows, 3, h, w]`.
    pub target: Tensor<B, 4>,
    /// Per-row loss weights `[rows]` (min-SNR); `None`: the plain mean.
    pub weights: Option<Tensor<B, 1>>,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Draws [`DiffusionBatch`]es: each source equally often, one caption per image at random,
/// a uniform timestep and standard normal noise per image, all from the step's own seed.
pub struct DiffusionBatches {
    set: Arc<CaptionSet>,
    prompts: Arc<PromptStates>,
    prompt_of: Vec<Vec<usize>>,
    by_source: Vec<Vec<usize>>,
    schedule: NoiseSchedule,
    prediction: PredictionType,
    batch: usize,
    cond_dropout: f64,
    seed: u64,
    snr_gamma: Option<f64>,
}

impl DiffusionBatches {
    /// Weighs each row's loss by its timestep's min-SNR-`gamma` weight
    /// ([`NoiseSchedule::min_snr_weight`]); `None` keeps the plain mean.
    pub fn with_snr_gamma(mut self, gamma: Option<f64>) -> Self {
        self.snr_gamma = gamma;
        self
    }

    /// Batches of `batch` images of `set` noised with `schedule`; `prompt_of[i]` lists the
    /// prompt indices (into `prompts`) of image `i`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        set: Arc<CaptionSet>,
        prompts: Arc<PromptStates>,
        prompt_of: Vec<Vec<usize>>,
        schedule: NoiseSchedule,
        prediction: PredictionType,
        batch: usize,
        cond_dropout: f64,
        seed: u64,
    ) -> Self {
        let by_source = set.drawable_sources();
        Self {
            set,
            prompts,
            prompt_of,
            by_source,
            schedule,
            prediction,
            batch,
            cond_dropout,
            seed,
            snr_gamma: None,
        }
    }
}

impl<B: Backend> BatchSource<B> for DiffusionBatches {
    type Batch = DiffusionBatch<B>;

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> DiffusionBatch<B> {
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let steps = self.schedule.betas.len();
        let mut images = Vec::with_capacity(self.batch);
        let mut prompts = Vec::with_capacity(self.batch);
        let mut timesteps = Vec::with_capacity(self.batch);
        for _ in 0..self.batch {
            let source = &self.by_source[(rng.next_u64() % self.by_source.len() as u64) as usize];
            let image = source[(rng.next_u64() % source.len() as u64) as usize];
            let refs = &self.prompt_of[image];
            let prompt = refs[(rng.next_u64() % refs.len() as u64) as usize];
            let dropped = rng.uniform() < self.cond_dropout;
            images.push(image);
            prompts.push(if dropped { 0 } else { prompt });
            timesteps.push((rng.next_u64() % steps as u64) as usize);
        }
        let rows = at.share.rows(self.batch);
        let n = rows.len();
        let pixels = self.set.pixels(&images[rows.clone()], &vec![(0, 0); n]);
        let per_image = 3 * pixels.height * pixels.width;
        // Every row's noise is drawn, so a share sees what the whole batch would.
        let noise: Vec<f32> = (0..self.batch * per_image)
            .map(|_| rng.normal() as f32)
            .collect();
        let x0: Tensor<B, 4> = pixels.to_tensor(device);
        let noise = Tensor::<B, 4>::from_data(
            TensorData::new(
                noise[rows.start * per_image..rows.end * per_image].to_vec(),
                x0.dims(),
            ),
            device,
        );
        let t = &timesteps[rows.clone()];
        let noisy = self.schedule.add_noise(x0.clone(), noise.clone(), t);
        let target = match self.prediction {
            PredictionType::Epsilon => noise,
            PredictionType::VPrediction => self.schedule.velocity(x0, noise, t),
            PredictionType::Sample => x0,
        };
        let weights = self.snr_gamma.map(|gamma| {
            let w: Vec<f32> = t
                .iter()
                .map(|&t| self.schedule.min_snr_weight(t, gamma, self.prediction))
                .collect();
            Tensor::from_data(TensorData::new(w, [n]), device)
        });
        let t: Vec<f32> = t.iter().map(|&t| t as f32).collect();
        DiffusionBatch {
            weights,
            noisy,
            timesteps: Tensor::from_data(TensorData::new(t, [n]), device),
            context: self.prompts.gather(&prompts[rows], device),
            target,
            at,
        }
    }
}
