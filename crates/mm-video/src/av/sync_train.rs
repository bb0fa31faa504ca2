//! Training the synchronization model through the house loop, and what users of sync models
//! need from it: the offset between a clip's sound and its frames (score the sound against the
//! frames at every shift in `-max..=max` frames and take the best, as SyncNet does) and an
//! in-sync score.

use std::sync::Arc;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_audio::features::Features;
use mm_core::train::AdamWConfig;
use mm_core::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, TrainError, WarmupCosine, fit, save_model_dir,
};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::clips::{AvClip, mel_extractor, mel_frames, mel_window};
use super::sync_model::{SyncNet, SyncNetConfig};
use crate::error::{Result, VideoError};

/// Everything a sync run is made of (`final/config.json` holds it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncTrainConfig {
    /// The model's sizes (`mel_frames` is set from the clips' frame rate).
    pub model: SyncNetConfig,
    /// Frame width and height.
    pub size: u32,
    /// Frame rate the model was trained at (set from the clips).
    pub fps: f64,
    /// Windows per step.
    pub batch: usize,
    /// Windows drawn from each clip of a step (the others in the batch are its hardest
    /// negatives: the same picture and sound at other times).
    pub per_clip: usize,
    /// Steps.
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Largest offset searched, in frames.
    pub max_offset: usize,
    /// Seed of weights, batches and test offsets.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
}

impl Default for SyncTrainConfig {
    fn default() -> Self {
        SyncTrainConfig {
            model: SyncNetConfig::new(),
            size: 48,
            fps: 24.0,
            batch: 32,
            per_clip: 4,
            steps: 1500,
            lr: 1e-3,
            warmup: 50,
            weight_decay: 1e-4,
            max_offset: 15,
            seed: 5,
            checkpoint_every: 250,
            keep_checkpoints: 2,
        }
    }
}

/// Checks that every clip has one frame rate and frame size and is long enough for the offset
/// search; sets `fps` and the mel window of `config` from them.
pub fn fit_config_to_clips(config: &mut SyncTrainConfig, clips: &[AvClip]) -> Result<()> {
    let first = clips
        .first()
        .ok_or_else(|| VideoError::Request("no audio-visual clips".into()))?;
    if config.max_offset < 3 || config.batch == 0 {
        return Err(VideoError::Request(format!(
            "max_offset must be at least 3 frames (the AUC's shifted sound moves 3 or more) and batch at least 1; got {} and {}",
            config.max_offset, config.batch
        )));
    }
    for (i, c) in clips.iter().enumerate() {
        if (c.fps - first.fps).abs() > 1e-6 {
            return Err(VideoError::Request(format!(
                "clip {i} runs at {} fps but clip 0 at {} fps: one model needs one frame rate",
                c.fps, first.fps
            )));
        }
        let need = 2 * config.max_offset + config.model.window + 2;
        if c.frames.len() < need {
            return Err(VideoError::Request(format!(
                "clip {i} has {} frames; an offset search over +-{} frames needs {need}",
                c.frames.len(),
                config.max_offset
            )));
        }
    }
    config.fps = first.fps;
    config.size = first.frames[0].width();
    config.model.mel_frames = mel_frames(config.model.window, first.fps);
    Ok(())
}

/// The clips with their normalized log-mel, shared by every step.
pub struct SyncBatches {
    clips: Arc<Vec<AvClip>>,
    mels: Arc<Vec<Features>>,
    config: SyncTrainConfig,
}

impl SyncBatches {
    /// Computes every clip's log-mel once.
    pub fn new(clips: Vec<AvClip>, config: SyncTrainConfig) -> Result<Self> {
        let extractor = mel_extractor();
        let mels = clips
            .iter()
            .map(|c| AvClip::log_mel(&c.audio, &extractor))
            .collect::<Result<Vec<_>>>()?;
        Ok(SyncBatches {
            clips: Arc::new(clips),
            mels: Arc::new(mels),
            config,
        })
    }
}

/// One device's share of a step: frame windows and the sound windows of the same times.
#[derive(Debug, Clone)]
pub struct SyncBatch<B: Backend> {
    /// `[rows, window * 3, size, size]`.
    pub frames: Tensor<B, 4>,
    /// `[rows, 1, n_mels, mel_frames]`.
    pub mel: Tensor<B, 4>,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Frame and sound windows of `(clip, start)` picks as tensors.
pub(crate) fn windows<B: Backend>(
    clips: &[AvClip],
    mels: &[&Features],
    picks: &[(usize, usize)],
    model: &SyncNetConfig,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let (w, count) = (model.window, model.mel_frames);
    let mut frames = Vec::new();
    let mut mel = Vec::new();
    for &(c, start) in picks {
        frames.extend(clips[c].frame_window(start, w));
        mel.extend(mel_window(mels[c], start, clips[c].fps, count));
    }
    let (width, height) = clips[picks[0].0].frames[0].dimensions();
    let n = picks.len();
    (
        Tensor::from_data(
            TensorData::new(frames, [n, 3 * w, height as usize, width as usize]),
            device,
        ),
        Tensor::from_data(TensorData::new(mel, [n, 1, model.n_mels, count]), device),
    )
}

impl<B: Backend> BatchSource<B> for SyncBatches {
    type Batch = SyncBatch<B>;

    fn batch_size(&self) -> usize {
        self.config.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> SyncBatch<B> {
        let c = &self.config;
        let mut rng = SplitMix64::stream(c.seed, at.step as u64);
        let mut picks = Vec::with_capacity(c.batch);
        while picks.len() < c.batch {
            let clip = (rng.next_u64() % self.clips.len() as u64) as usize;
            let starts = self.clips[clip].windows(c.model.window) as u64;
            for _ in 0..c.per_clip.max(1).min(c.batch - picks.len()) {
                picks.push((clip, (rng.next_u64() % starts) as usize));
            }
        }
        let mels: Vec<&Features> = self.mels.iter().collect();
        let rows = &picks[at.share.rows(c.batch)];
        let (frames, mel) = windows(&self.clips, &mels, rows, &c.model, device);
        SyncBatch { frames, mel, at }
    }
}

fn loss_and_output<B: Backend>(
    model: &SyncNet<B>,
    batch: &SyncBatch<B>,
) -> (Tensor<B, 1>, StepOutput) {
    let (loss, similarity) = model.loss(batch.frames.clone(), batch.mel.clone());
    let [n, _] = similarity.dims();
    let best = similarity
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap_or_default();
    let correct = best
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == *i as i64)
        .count();
    let out = batch
        .at
        .output(loss.clone().into_scalar_f64())
        .with("accuracy", correct as f64 / n.max(1) as f64)
        .with("logit_scale", model.logit_scale.scale().into_scalar_f64());
    (loss, out)
}

trait ScalarF64 {
    fn into_scalar_f64(self) -> f64;
}

impl<B: Backend> ScalarF64 for Tensor<B, 1> {
    fn into_scalar_f64(self) -> f64 {
        self.into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .unwrap_or_default()[0]
    }
}

impl<B: AutodiffBackend> TrainStep for SyncNet<B> {
    type Input = SyncBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: SyncBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = loss_and_output(self, &batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for SyncNet<B> {
    type Input = SyncBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: SyncBatch<B>) -> StepOutput {
        loss_and_output(self, &batch).1
    }
}

/// Trains on `clips` on `devices`, writing the run folder and `final/`.
pub fn train_sync<B: AutodiffBackend>(
    config: &SyncTrainConfig,
    clips: Vec<AvClip>,
    run: &RunOptions,
    devices: &[B::Device],
) -> std::result::Result<SyncNet<B::InnerBackend>, TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    let mut config = config.clone();
    fit_config_to_clips(&mut config, &clips).map_err(|e| TrainError::Settings(e.to_string()))?;
    <B as Backend>::seed(main, config.seed);
    let model = config
        .model
        .init::<B>(main)
        .map_err(|e| TrainError::Settings(e.0))?;
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, SyncNet<B>>();
    let json = serde_json::to_value(&config).expect("configs serialize");
    let spec = run.spec(
        config.steps,
        config.checkpoint_every,
        config.keep_checkpoints,
    );
    let source =
        SyncBatches::new(clips, config.clone()).map_err(|e| TrainError::Settings(e.to_string()))?;
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let model = fit(&spec, &json, model, optim, schedule, source, devices)?;
    save_model_dir(&run.run_dir.join("final"), &json, &model)?;
    Ok(model)
}
