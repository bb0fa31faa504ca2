//! Sound classification: an audio encoder and a linear head over log-mel crops of labelled
//! clips (loaded by [`crate::clips`]). Training and evaluation (`cargo xtask train|eval
//! audio-classifier`) are in [`crate::classifier_train`].

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use mm_core::encoder::Encoder;
use serde::{Deserialize, Serialize};

use crate::AudioError;
pub use crate::clips::{ClipSet, crop, load_clips, load_signal, normalize_log_mel};
use crate::encoder::{
    AudioTransformer, AudioTransformerConfig, SpectrogramCnn, SpectrogramCnnConfig,
};

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
