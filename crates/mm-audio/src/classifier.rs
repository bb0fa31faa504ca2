//! Sound classification: an audio encoder and a linear head over log-mel crops of labelled
//! clips. Training and evaluation (`cargo xtask train|eval audio-classifier`) are in
//! [`crate::classifier_train`].

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use mm_core::encoder::Encoder;
use serde::{Deserialize, Serialize};

use crate::batch::FeatureKind;
use crate::encoder::{
    AudioTransformer, AudioTransformerConfig, SpectrogramCnn, SpectrogramCnnConfig,
};
use crate::features::{Features, MelConfig, MelExtractor};
use crate::{AudioError, load_audio, resample::resample};
use mm_data::manifest::AudioLabel;

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
    /// Steps between checkpoints (0: only at the end).
    #[config(default = 100)]
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk.
    #[config(default = 2)]
    pub keep_checkpoints: usize,
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
    /// Features could not be computed or the encoder built.
    #[error(transparent)]
    Features(#[from] crate::error::FeatureError),
    /// The training loop or a model folder failed.
    #[error(transparent)]
    Run(#[from] mm_core::train::TrainError),
}

/// Loads, downmixes, resamples and featurizes `records` (classes indexed by `classes`).
pub fn load_clips(
    records: &[(PathBuf, AudioLabel)],
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
    let extractor = MelExtractor::new(MelConfig::new(cfg.sample_rate, 400, 160, cfg.n_mels))?;
    let refs: Vec<&[f32]> = signals.iter().map(|s| s.as_slice()).collect();
    let mut features = extractor.batch(&refs, FeatureKind::LogMel(Some(80.0)))?;
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
pub fn crop(f: &Features, start: usize, frames: usize) -> Vec<f32> {
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
                    .init(device)?,
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
