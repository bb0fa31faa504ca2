//! Sound classification: an audio encoder and a linear head trained on log-mel crops of
//! labelled clips (`cargo xtask train audio-classifier`), evaluated on held-out clips against
//! the majority-class baseline.

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use mm_core::cca::synth::SplitMix64;
use mm_core::encoder::Encoder;
use serde::{Deserialize, Serialize};

use crate::batch::FeatureKind;
use crate::datasets::AudioRecord;
use crate::encoder::{
    AudioTransformer, AudioTransformerConfig, SpectrogramCnn, SpectrogramCnnConfig,
};
use crate::features::{Features, MelConfig, MelExtractor};
use crate::{AudioError, load_audio, resample::resample};

/// Which encoder the classifier uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncoderKind {
    /// [`SpectrogramCnn`].
    Cnn,
    /// [`AudioTransformer`].
    Transformer,
}

/// Settings of a classifier run.
#[derive(Config, Debug)]
pub struct AudioClassifierConfig {
    /// Encoder.
    #[config(default = "EncoderKind::Cnn")]
    pub encoder: EncoderKind,
    /// Rate every clip is resampled to.
    #[config(default = 16000)]
    pub sample_rate: u32,
    /// Mel bands (n_fft 400, hop 160).
    #[config(default = 64)]
    pub n_mels: usize,
    /// Frames per training crop (100 = 1 s).
    #[config(default = 96)]
    pub crop_frames: usize,
    /// Embedding width.
    #[config(default = 128)]
    pub d_embed: usize,
    /// Optimizer steps.
    #[config(default = 1000)]
    pub steps: usize,
    /// Crops per step.
    #[config(default = 32)]
    pub batch: usize,
    /// Adam learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Seed of initialization and crops.
    #[config(default = 0)]
    pub seed: u64,
}

/// Clips as normalized log-mel matrices with their class indices.
#[derive(Debug, Clone)]
pub struct ClipSet {
    /// One `[n_mels][frames]` matrix per clip, in `[0, 1]` (0 is 80 dB below the clip's peak).
    pub features: Vec<Features>,
    /// Class index per clip.
    pub labels: Vec<usize>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// A clip could not be decoded or resampled.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Features or model settings are invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Loads, downmixes, resamples and featurizes `records` (classes indexed by `classes`).
pub fn load_clips(
    records: &[(PathBuf, AudioRecord)],
    classes: &[String],
    cfg: &AudioClassifierConfig,
) -> Result<ClipSet, ClassifierError> {
    let mut signals = Vec::with_capacity(records.len());
    let mut labels = Vec::with_capacity(records.len());
    for (path, record) in records {
        signals.push(load_signal(path, cfg.sample_rate)?);
        let label = classes
            .iter()
            .position(|c| *c == record.label)
            .ok_or_else(|| {
                ClassifierError::Invalid(format!(
                    "{}: unknown label {}",
                    path.display(),
                    record.label
                ))
            })?;
        labels.push(label);
    }
    let extractor = MelExtractor::new(MelConfig::new(cfg.sample_rate, 400, 160, cfg.n_mels))
        .map_err(ClassifierError::Invalid)?;
    let refs: Vec<&[f32]> = signals.iter().map(|s| s.as_slice()).collect();
    let mut features = extractor
        .batch(&refs, FeatureKind::LogMel(Some(80.0)))
        .map_err(ClassifierError::Invalid)?;
    features.iter_mut().for_each(normalize_log_mel);
    Ok(ClipSet { features, labels })
}

/// Maps a log-mel (dB, `top_db = 80`) to `[0, 1]`: 1 at the clip's peak, 0 at 80 dB below it,
/// so loudness does not matter.
pub fn normalize_log_mel(f: &mut Features) {
    let peak = f.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    f.data
        .iter_mut()
        .for_each(|v| *v = (*v - peak) / 80.0 + 1.0);
}

/// A file as a mono signal at `rate`.
pub fn load_signal(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    let audio = load_audio(path)?;
    resample(&audio.to_mono(), audio.sample_rate, rate)
}

/// `crop_frames` columns of `f` starting at `start`, zero-padded past its end, row-major.
fn crop(f: &Features, start: usize, frames: usize) -> Vec<f32> {
    let mut out = vec![0.0; f.rows * frames];
    for r in 0..f.rows {
        for t in 0..frames.min(f.frames.saturating_sub(start)) {
            out[r * frames + t] = f.data[r * f.frames + start + t] as f32;
        }
    }
    out
}

/// Either encoder, so one classifier type trains both.
#[derive(Module, Debug)]
pub enum AudioEncoder<B: Backend> {
    /// The spectrogram CNN.
    Cnn(SpectrogramCnn<B>),
    /// The audio transformer.
    Transformer(AudioTransformer<B>),
}

/// An encoder and a linear head.
#[derive(Module, Debug)]
pub struct AudioClassifier<B: Backend> {
    encoder: AudioEncoder<B>,
    head: Linear<B>,
}

impl<B: Backend> AudioClassifier<B> {
    /// Builds the model for `classes` classes.
    pub fn new(
        cfg: &AudioClassifierConfig,
        classes: usize,
        device: &B::Device,
    ) -> Result<Self, ClassifierError> {
        let encoder = match cfg.encoder {
            EncoderKind::Cnn => AudioEncoder::Cnn(
                SpectrogramCnnConfig::new()
                    .with_channels_1(32)
                    .with_channels_2(64)
                    .with_d_output(cfg.d_embed)
                    .init(device),
            ),
            EncoderKind::Transformer => AudioEncoder::Transformer(
                AudioTransformerConfig::new(cfg.n_mels, cfg.crop_frames)
                    .with_d_output(cfg.d_embed)
                    .init(device)
                    .map_err(ClassifierError::Invalid)?,
            ),
        };
        Ok(Self {
            encoder,
            head: LinearConfig::new(cfg.d_embed, classes).init(device),
        })
    }

    /// Class logits.
    ///
    /// # Shapes
    /// - `x`: `[batch, 1, n_mels, crop_frames]` -> `[batch, classes]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let embedding = match &self.encoder {
            AudioEncoder::Cnn(e) => e.encode(x),
            AudioEncoder::Transformer(e) => e.encode(x),
        };
        self.head.forward(embedding)
    }
}

/// Held-out figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierReport {
    /// Class names.
    pub classes: Vec<String>,
    /// Training and test clips.
    pub n_train: usize,
    /// Held-out clips.
    pub n_test: usize,
    /// Held-out accuracy (logits averaged over each clip's crops).
    pub test_accuracy: f64,
    /// Accuracy of always answering the most frequent training class.
    pub majority_baseline: f64,
    /// Mean training loss over the first and the last 20 steps.
    pub loss_first_last: (f64, f64),
}

/// Trains on `train` and evaluates on `test`.
pub fn train_classifier<B: AutodiffBackend>(
    cfg: &AudioClassifierConfig,
    classes: &[String],
    train: &ClipSet,
    test: &ClipSet,
    device: &B::Device,
    mut on_step: impl FnMut(usize, f64),
) -> Result<ClassifierReport, ClassifierError> {
    if train.features.is_empty() || test.features.is_empty() {
        return Err(ClassifierError::Invalid(
            "both splits need at least one clip".into(),
        ));
    }
    <B as Backend>::seed(device, cfg.seed);
    let mut model = AudioClassifier::<B>::new(cfg, classes.len(), device)?;
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = SplitMix64::new(cfg.seed);
    let (rows, frames) = (cfg.n_mels, cfg.crop_frames);
    let mut losses = Vec::with_capacity(cfg.steps);
    for step in 0..cfg.steps {
        let mut x = Vec::with_capacity(cfg.batch * rows * frames);
        let mut y = Vec::with_capacity(cfg.batch);
        for _ in 0..cfg.batch {
            let i = (rng.next_u64() % train.features.len() as u64) as usize;
            let f = &train.features[i];
            let start = (rng.next_u64() % (f.frames.saturating_sub(frames) as u64 + 1)) as usize;
            x.extend(crop(f, start, frames));
            y.push(train.labels[i] as i64);
        }
        let x = Tensor::<B, 4>::from_data(TensorData::new(x, [cfg.batch, 1, rows, frames]), device);
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [cfg.batch]), device);
        let loss = loss_fn.forward(model.forward(x), y);
        let value = loss.clone().into_scalar().elem::<f64>();
        losses.push(value);
        on_step(step, value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.lr, model, grads);
    }
    let valid = model.valid();
    let mut correct = 0;
    for (f, &label) in test.features.iter().zip(&test.labels) {
        let starts: Vec<usize> = (0..f.frames.saturating_sub(frames) + 1)
            .step_by(frames)
            .collect();
        let x: Vec<f32> = starts.iter().flat_map(|&s| crop(f, s, frames)).collect();
        let x = Tensor::<B::InnerBackend, 4>::from_data(
            TensorData::new(x, [starts.len(), 1, rows, frames]),
            device,
        );
        let logits = valid.forward(x).mean_dim(0); // [1, classes]
        let predicted = logits.argmax(1).into_scalar().elem::<i64>() as usize;
        correct += (predicted == label) as usize;
    }
    let mut counts = vec![0usize; classes.len()];
    train.labels.iter().for_each(|&l| counts[l] += 1);
    let majority = (0..classes.len()).max_by_key(|&c| counts[c]).unwrap_or(0);
    let baseline =
        test.labels.iter().filter(|&&l| l == majority).count() as f64 / test.labels.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let k = losses.len().min(20);
    Ok(ClassifierReport {
        classes: classes.to_vec(),
        n_train: train.features.len(),
        n_test: test.features.len(),
        test_accuracy: correct as f64 / test.features.len() as f64,
        majority_baseline: baseline,
        loss_first_last: (mean(&losses[..k]), mean(&losses[losses.len() - k..])),
    })
}
