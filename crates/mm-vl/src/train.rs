//! Contrastive training of CLIP on an [`ImageTextSet`], through the house training loop
//! ([`mm_core::train::fit`], on burn-train).
//!
//! Everything random is derived from `seed` and the step number (the sample order of each
//! epoch, the caption drawn for each image, the augmentation), so a run resumed from a
//! checkpoint sees exactly the batches the uninterrupted run would have seen. On several
//! devices each device takes its share of every batch; the contrastive loss then sees the
//! negatives of its own share only (no cross-device gather), and the gradients are summed.

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::AdamWConfig;
pub use mm_core::train::RunOptions;
use mm_core::train::{BatchSource, StepInfo, StepOutput, WarmupCosine, fit};
use mm_text::{ClipTokenizer, TextBatch, TokenizerError};
use rand::rngs::StdRng;

use crate::augment::ColourAugment;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::checkpoint::{CheckpointError, save_model};
use crate::clip::{Clip, ClipConfig};
use crate::data::{ImageTextSet, draw_shifts};

/// Optimization settings.
#[derive(Config, Debug, PartialEq)]
pub struct TrainSettings {
    /// Pairs per step (the contrastive loss sees `batch_size - 1` negatives per sample).
    #[config(default = 128)]
    pub batch_size: usize,
    /// Total optimizer steps.
    #[config(default = 1000)]
    pub steps: usize,
    /// Peak learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay.
    #[config(default = 50)]
    pub warmup_steps: usize,
    /// AdamW decoupled weight decay.
    #[config(default = 0.1)]
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    #[config(default = 1.0)]
    pub grad_clip_norm: f64,
    /// Seed of every random choice.
    #[config(default = 42)]
    pub seed: u64,
    /// Write a checkpoint every this many steps (0: only at the end); a kill loses at most
    /// the steps since the last one.
    #[config(default = 100)]
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk.
    #[config(default = 2)]
    pub keep_checkpoints: usize,
    /// Largest random translation, in pixels, applied to training images (0: none).
    #[config(default = 2)]
    pub max_shift: u32,
    /// Flips, grayscale and colour jitter of training images (off unless set).
    #[config(default = "ColourAugment::default()")]
    pub augment: ColourAugment,
}

/// A training configuration file: the model and the optimization.
#[derive(Config, Debug, PartialEq)]
pub struct ClipTrainConfig {
    /// The model.
    pub model: ClipConfig,
    /// The optimization.
    pub train: TrainSettings,
}

/// Why training stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The training loop could not start or finish (run folder, resume, settings).
    #[error(transparent)]
    Run(#[from] mm_core::train::TrainError),
    /// Saving the final model failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A caption could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The settings cannot work with this data.
    #[error("invalid training settings: {0}")]
    Settings(String),
    /// The model configuration cannot be built.
    #[error("invalid model config: {0}")]
    Config(#[from] mm_core::nn::ConfigError),
}

/// Learning rate at `step` (0-based): linear warm-up, then cosine decay to zero.
pub fn learning_rate(settings: &TrainSettings, step: usize) -> f64 {
    schedule(settings).at(step)
}

fn schedule(s: &TrainSettings) -> WarmupCosine {
    WarmupCosine::new(s.lr, s.warmup_steps, s.steps)
}

/// The sample indices of step `step` (0-based): epoch-wise shuffles seeded by `seed`.
pub fn batch_indices(n: usize, batch_size: usize, seed: u64, step: usize) -> Vec<usize> {
    let per_epoch = (n / batch_size).max(1);
    let (epoch, slot) = (step / per_epoch, step % per_epoch);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    ));
    order
        .into_iter()
        .skip(slot * batch_size)
        .take(batch_size)
        .collect()
}

/// One device's share of a step: images, captions, and where they belong.
#[derive(Debug, Clone)]
pub struct ClipBatch<B: Backend> {
    /// Normalized pixels, `[rows, 3, size, size]`.
    pub pixels: Tensor<B, 4>,
    /// The matching captions.
    pub text: TextBatch<B>,
    /// The step, this device's share of it, and the step's size.
    pub at: StepInfo,
}

/// Builds the batch of any step from the step number (the house loop's [`BatchSource`]).
pub struct ClipBatches {
    data: ImageTextSet,
    /// Token ids of every caption, `[image][caption]`, tokenized once up front.
    tokens: Vec<Vec<Vec<u32>>>,
    context: usize,
    pad: u32,
    settings: TrainSettings,
}

impl ClipBatches {
    /// Tokenizes every caption of `data` (so a bad caption is an error before training).
    pub fn new(
        data: &ImageTextSet,
        tokenizer: &ClipTokenizer,
        context: usize,
        settings: &TrainSettings,
    ) -> Result<Self, TokenizerError> {
        let tokens = data
            .captions
            .iter()
            .map(|caps| caps.iter().map(|c| tokenizer.encode(c, context)).collect())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            data: data.clone(),
            tokens,
            context,
            pad: tokenizer.pad_id(),
            settings: settings.clone(),
        })
    }
}

impl<B: Backend> BatchSource<B> for ClipBatches {
    type Batch = ClipBatch<B>;

    fn batch_size(&self) -> usize {
        self.settings.batch_size
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> ClipBatch<B> {
        let (step, share) = (at.step, at.share);
        let s = &self.settings;
        let mut rng = StdRng::seed_from_u64(s.seed.wrapping_add(1 + step as u64));
        let indices = batch_indices(self.data.len(), s.batch_size, s.seed, step);
        // Draw for the whole batch, in the same order on every device, then keep this share.
        let picks: Vec<usize> = indices
            .iter()
            .map(|&i| rng.random_range(0..self.tokens[i].len()))
            .collect();
        let shifts = draw_shifts(&mut rng, s.max_shift, indices.len());
        let draws = s.augment.draw(&mut rng, indices.len());
        let rows = share.rows(indices.len());
        let pixels = self
            .data
            .pixels_augmented(
                &indices[rows.clone()],
                &shifts[rows.clone()],
                &draws[rows.clone()],
            )
            .to_tensor::<B>(device);
        let mut ids = Vec::with_capacity(rows.len() * self.context);
        let mut eot = Vec::with_capacity(rows.len());
        for r in rows.clone() {
            let row = &self.tokens[indices[r]][picks[r]];
            eot.push(row.len() as i64 - 1);
            ids.extend(row.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(
                self.pad as i64,
                self.context - row.len(),
            ));
        }
        let n = rows.len();
        let text = TextBatch {
            ids: Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, self.context]), device),
            eot_positions: Tensor::<B, 1, Int>::from_data(TensorData::new(eot, [n]), device),
        };
        ClipBatch { pixels, text, at }
    }
}

fn step_output<B: Backend>(model: &Clip<B>, batch: &ClipBatch<B>, loss: f64) -> StepOutput {
    batch.at.output(loss).with(
        "logit_scale",
        model.logit_scale.scale().into_scalar().elem::<f64>(),
    )
}

impl<B: AutodiffBackend> TrainStep for Clip<B> {
    type Input = ClipBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: ClipBatch<B>) -> TrainOutput<StepOutput> {
        let loss = self.loss(batch.pixels.clone(), batch.text.clone());
        let value: f64 = loss.clone().into_scalar().elem();
        // Each device's gradient is weighted by its share, so their sum is the batch's.
        let grads = (loss * batch.at.weight()).backward();
        let out = step_output(self, &batch, value);
        TrainOutput::new(self, grads, out)
    }

    fn optimize<B2, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        B2: AutodiffBackend,
        O: Optimizer<Self, B2>,
        Self: AutodiffModule<B2>,
    {
        optim.step(lr, self, grads).clamp_logit_scale()
    }

    fn optimize_multi<B2, O>(self, optim: &mut O, lr: f64, grads: MultiGradientsParams) -> Self
    where
        B2: AutodiffBackend,
        O: Optimizer<Self, B2>,
        Self: AutodiffModule<B2>,
    {
        optim.step_multi(lr, self, grads).clamp_logit_scale()
    }
}

impl<B: Backend> InferenceStep for Clip<B> {
    type Input = ClipBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: ClipBatch<B>) -> StepOutput {
        let loss = self.loss(batch.pixels.clone(), batch.text.clone());
        step_output(self, &batch, loss.into_scalar().elem())
    }
}

/// Checks `config` against `data` before anything is written.
pub fn check_settings(config: &ClipTrainConfig, data: &ImageTextSet) -> Result<(), TrainError> {
    let s = &config.train;
    config.model.validate()?;
    if s.batch_size < 2 || s.batch_size > data.len() {
        return Err(TrainError::Settings(format!(
            "batch_size {} must be between 2 and the number of samples ({})",
            s.batch_size,
            data.len()
        )));
    }
    let (size, _) = data.processor.output_size();
    if size as usize != config.model.vision_config.image_size {
        return Err(TrainError::Settings(format!(
            "data was preprocessed to {size} px but the model expects {} px",
            config.model.vision_config.image_size
        )));
    }
    Ok(())
}

/// Trains `config.model` on `data` on `devices` (data-parallel when there are several), writing
/// the run folder and `final/`. Returns the trained model.
///
/// With `run.resume`, training continues from the newest whole checkpoint (an error if there
/// is none, or if the run folder's `config.json` differs from `config`).
pub fn train<B: AutodiffBackend>(
    config: &ClipTrainConfig,
    data: &ImageTextSet,
    tokenizer: &ClipTokenizer,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<Clip<B::InnerBackend>, TrainError> {
    check_settings(config, data)?;
    let s = &config.train;
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    let context = config.model.text_config.max_position_embeddings;
    let source = ClipBatches::new(data, tokenizer, context, s)?;
    B::seed(main, s.seed);
    let model = config.model.init::<B>(main)?;
    let optim = AdamWConfig::new()
        .with_weight_decay(s.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip_norm as f32)))
        .init::<B, Clip<B>>();
    let spec = run.spec(s.steps, s.checkpoint_every, s.keep_checkpoints);
    let json = serde_json::to_value(config).expect("configs serialize");
    let model = fit(&spec, &json, model, optim, schedule(s), source, devices)?;
    save_model(&model, &config.model, &run.run_dir.join("final"))?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let s = TrainSettings::new()
            .with_steps(100)
            .with_warmup_steps(10)
            .with_lr(1.0);
        assert!((learning_rate(&s, 0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&s, 9) - 1.0).abs() < 1e-12);
        assert!(learning_rate(&s, 99) < 0.001);
    }

    #[test]
    fn batches_cover_each_epoch_once_and_are_reproducible() {
        let mut seen: Vec<usize> = (0..5).flat_map(|s| batch_indices(10, 2, 7, s)).collect();
        assert_eq!(batch_indices(10, 2, 7, 3), batch_indices(10, 2, 7, 3));
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_ne!(batch_indices(10, 2, 7, 0), batch_indices(10, 2, 7, 5));
    }
}
