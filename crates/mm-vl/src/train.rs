//! Contrastive training of CLIP on an [`ImageTextSet`], with atomic checkpoints and exact resume.
//!
//! Everything random is derived from `seed` and the step number (the sample order of each
//! epoch, the caption drawn for each image, the augmentation), so a run resumed from a
//! checkpoint sees exactly the batches the uninterrupted run would have seen.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use mm_text::{ClipTokenizer, TextBatch, TokenizerError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::checkpoint::{
    CheckpointError, TrainState, latest_checkpoint, load_config, load_record, publish_checkpoint,
    read_json, record_bytes, save_model, write_folder_atomically,
};
use crate::clip::{Clip, ClipConfig};
use crate::data::ImageTextSet;

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
    /// Write a checkpoint every this many steps (0: only at the end).
    #[config(default = 100)]
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk.
    #[config(default = 2)]
    pub keep_checkpoints: usize,
    /// Largest random translation, in pixels, applied to training images (0: none).
    #[config(default = 2)]
    pub max_shift: u32,
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
    /// Saving or loading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A caption could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The settings cannot work with this data.
    #[error("invalid training settings: {0}")]
    Settings(String),
    /// The checkpoint was made with another model configuration.
    #[error("checkpoint {path} was trained with a different model config; use a fresh --run-dir")]
    ConfigMismatch {
        /// The checkpoint.
        path: PathBuf,
    },
}

/// What the loop reports after each step.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    /// Steps completed (1-based).
    pub step: usize,
    /// Total steps of the run.
    pub total_steps: usize,
    /// The loss of this step's batch.
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
    /// `exp(logit_scale)` after the step.
    pub logit_scale: f64,
    /// Training pairs per second over this step.
    pub samples_per_sec: f64,
}

/// Receives progress; returning `Break` stops the run after the current step (checkpointing
/// it), as an interruption would.
pub trait TrainObserver {
    /// Called once before the first step, with the step the run starts from.
    fn on_start(&mut self, _start_step: usize, _total_steps: usize) {}
    /// Called after every step.
    fn on_step(&mut self, report: &StepReport) -> ControlFlow<()>;
    /// Called after a checkpoint is written.
    fn on_checkpoint(&mut self, _step: usize, _dir: &Path) {}
}

/// Learning rate at `step` (0-based): linear warm-up, then cosine decay to zero.
pub fn learning_rate(settings: &TrainSettings, step: usize) -> f64 {
    let warm = settings.warmup_steps.min(settings.steps);
    if step < warm {
        return settings.lr * (step + 1) as f64 / warm as f64;
    }
    let span = (settings.steps - warm).max(1) as f64;
    let progress = ((step - warm) as f64 / span).min(1.0);
    settings.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
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

/// Trains `config.model` on `data`, writing checkpoints and `final/` under `run_dir`.
///
/// With `resume`, training continues from `run_dir`'s latest checkpoint (an error if there is
/// none, or if it was made with another model config). Returns the trained model.
pub fn train<B: AutodiffBackend>(
    config: &ClipTrainConfig,
    data: &ImageTextSet,
    tokenizer: &ClipTokenizer,
    run_dir: &Path,
    resume: bool,
    device: &B::Device,
    observer: &mut dyn TrainObserver,
) -> Result<Clip<B>, TrainError> {
    let s = &config.train;
    config.model.validate().map_err(TrainError::Settings)?;
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
    B::seed(device, s.seed);
    let mut model = config.model.init::<B>(device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(s.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip_norm as f32)))
        .init::<B, Clip<B>>();
    let mut start = 0;
    if resume {
        let dir = latest_checkpoint(run_dir)?
            .ok_or_else(|| CheckpointError::NoCheckpoint(run_dir.to_path_buf()))?;
        if load_config(&dir)? != config.model {
            return Err(TrainError::ConfigMismatch { path: dir });
        }
        model = model.load_record(load_record::<B, _>(&dir.join("model.mpk"), device)?);
        optim = optim.load_record(load_record::<B, _>(&dir.join("optim.mpk"), device)?);
        start = read_json::<TrainState>(&dir.join("state.json"))?.step;
    }
    let context = config.model.text_config.max_position_embeddings;
    observer.on_start(start, s.steps);
    let mut step = start;
    while step < s.steps {
        let began = Instant::now();
        let mut rng = StdRng::seed_from_u64(s.seed.wrapping_add(1 + step as u64));
        let indices = batch_indices(data.len(), s.batch_size, s.seed, step);
        let captions: Vec<&str> = indices
            .iter()
            .map(|&i| data.captions[i][rng.random_range(0..data.captions[i].len())].as_str())
            .collect();
        let pixels = data
            .pixels(&indices, Some((&mut rng, s.max_shift)))
            .to_tensor::<B>(device);
        let (ids, eot_positions) = tokenizer
            .encode_batch(&captions, context)?
            .to_tensors::<B>(device);
        let loss = model.loss(pixels, TextBatch { ids, eot_positions });
        let loss_value: f64 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = learning_rate(s, step);
        model = optim.step(lr, model, grads).clamp_logit_scale();
        step += 1;
        let logit_scale: f64 = model.logit_scale.scale().into_scalar().elem();
        let report = StepReport {
            step,
            total_steps: s.steps,
            loss: loss_value,
            lr,
            logit_scale,
            samples_per_sec: s.batch_size as f64 / began.elapsed().as_secs_f64(),
        };
        let flow = observer.on_step(&report);
        let due = s.checkpoint_every > 0 && step.is_multiple_of(s.checkpoint_every);
        if due || flow.is_break() || step == s.steps {
            let name = format!("step-{step:08}");
            let dir = run_dir.join("checkpoints").join(&name);
            write_folder_atomically(
                &dir,
                &[
                    (
                        "config.json",
                        serde_json::to_vec_pretty(&config.model).expect("configs serialize"),
                    ),
                    (
                        "model.mpk",
                        record_bytes::<B, _>(model.clone().into_record()),
                    ),
                    ("optim.mpk", record_bytes::<B, _>(optim.to_record())),
                    (
                        "state.json",
                        serde_json::to_vec(&TrainState { step }).expect("state serializes"),
                    ),
                ],
            )?;
            publish_checkpoint(run_dir, &name, s.keep_checkpoints)?;
            observer.on_checkpoint(step, &dir);
        }
        if flow.is_break() {
            return Ok(model);
        }
    }
    save_model(&model.valid(), &config.model, &run_dir.join("final"))?;
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
        assert!((learning_rate(&s, 10) - 1.0).abs() < 1e-12);
        assert!(learning_rate(&s, 55) < 0.51 && learning_rate(&s, 55) > 0.49);
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
