//! Audio encoders over log-mel spectrograms, both implementing mm-core's
//! [`Encoder`](mm_core::Encoder): the guide's spectrogram CNN (`AudioVisualSync.audio_encoder`)
//! and a small audio transformer over patches of the log-mel (in the manner of AST).

use crate::error::FeatureError;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Distribution, Tensor, activation::relu, backend::Backend};
use mm_core::encoder::{Encoder, EncoderOutput};
use mm_core::nn::fused::conv2d;
use mm_core::nn::{Activation, TransformerEncoder, TransformerEncoderConfig};

/// Sizes of a [`SpectrogramCnn`].
#[derive(Config, Debug)]
pub struct SpectrogramCnnConfig {
    /// Channels of the first convolution.
    #[config(default = 64)]
    pub channels_1: usize,
    /// Channels of the second convolution.
    #[config(default = 128)]
    pub channels_2: usize,
    /// Embedding width.
    #[config(default = 128)]
    pub d_output: usize,
}

impl SpectrogramCnnConfig {
    /// Builds the encoder.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SpectrogramCnn<B> {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        SpectrogramCnn {
            conv1: conv(1, self.channels_1),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            conv2: conv(self.channels_1, self.channels_2),
            global: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            proj: LinearConfig::new(self.channels_2, self.d_output).init(device),
        }
    }
}

/// `Conv 3x3 -> ReLU -> MaxPool 2 -> Conv 3x3 -> ReLU -> global average -> Linear`.
#[derive(Module, Debug)]
pub struct SpectrogramCnn<B: Backend> {
    conv1: Conv2d<B>,
    pool: MaxPool2d,
    conv2: Conv2d<B>,
    global: AdaptiveAvgPool2d,
    proj: Linear<B>,
}

impl<B: Backend> Encoder<B> for SpectrogramCnn<B> {
    /// Log-mel spectrograms, `[batch, 1, n_mels, frames]`.
    type Input = Tensor<B, 4>;

    fn encode_full(&self, input: Tensor<B, 4>) -> EncoderOutput<B> {
        let h = self.pool.forward(relu(conv2d(&self.conv1, input))); // [batch, c1, mels/2, frames/2]
        let h = relu(conv2d(&self.conv2, h)); // [batch, c2, mels/2, frames/2]
        let [batch, channels, _, _] = h.dims();
        let pooled = self.global.forward(h).reshape([batch, channels]); // [batch, c2]
        EncoderOutput {
            pooled: self.proj.forward(pooled), // [batch, d_output]
            sequence: None,
        }
    }

    fn output_dim(&self) -> usize {
        self.proj.weight.dims()[1]
    }
}

/// Sizes of an [`AudioTransformer`].
#[derive(Config, Debug)]
pub struct AudioTransformerConfig {
    /// Mel bands of the input.
    pub n_mels: usize,
    /// Most frames an input may have (sets the position table).
    pub max_frames: usize,
    /// Patch height and width (mel bands x frames).
    #[config(default = 8)]
    pub patch: usize,
    /// Transformer width.
    #[config(default = 96)]
    pub hidden_size: usize,
    /// Layers.
    #[config(default = 2)]
    pub num_hidden_layers: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub num_attention_heads: usize,
    /// Embedding width.
    #[config(default = 128)]
    pub d_output: usize,
}

impl AudioTransformerConfig {
    /// Builds the encoder; errors when the sizes do not fit together.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<AudioTransformer<B>, FeatureError> {
        mm_core::nn::attention::validate_heads(self.hidden_size, self.num_attention_heads)
            .map_err(|e| FeatureError::Setting(e.to_string()))?;
        if self.patch == 0 || self.n_mels < self.patch || self.max_frames < self.patch {
            return Err(FeatureError::Setting(format!(
                "patch {} must be at least 1 and fit in {} mels x {} frames",
                self.patch, self.n_mels, self.max_frames
            )));
        }
        let (rows, cols) = (self.n_mels / self.patch, self.max_frames / self.patch);
        let h = self.hidden_size;
        let normal = Distribution::Normal(0.0, 0.02);
        Ok(AudioTransformer {
            patch_embed: Conv2dConfig::new([1, h], [self.patch, self.patch])
                .with_stride([self.patch, self.patch])
                .init(device),
            cls: Param::from_tensor(Tensor::random([1, 1, h], normal, device)),
            positions: Param::from_tensor(Tensor::random([rows, cols, h], normal, device)),
            encoder: TransformerEncoderConfig::pre_norm(
                h,
                4 * h,
                self.num_attention_heads,
                self.num_hidden_layers,
                Activation::Gelu,
                1e-5,
            )
            .init(device)
            .map_err(|e| FeatureError::Setting(e.to_string()))?,
            norm: LayerNormConfig::new(h).init(device),
            proj: LinearConfig::new(h, self.d_output).init(device),
        })
    }
}

/// Non-overlapping patches of the log-mel, a class token and learned positions, a pre-norm
/// transformer, and the class token projected.
#[derive(Module, Debug)]
pub struct AudioTransformer<B: Backend> {
    patch_embed: Conv2d<B>,
    /// Class token (its position included), `[1, 1, h]`.
    cls: Param<Tensor<B, 3>>,
    /// Position of each patch on the (mel, time) grid, `[max rows, max cols, h]`.
    positions: Param<Tensor<B, 3>>,
    encoder: TransformerEncoder<B>,
    norm: LayerNorm<B>,
    proj: Linear<B>,
}

impl<B: Backend> AudioTransformer<B> {
    /// Checks that `dims` (`[batch, 1, mels, frames]`) fits the encoder: one channel, the
    /// configured mels, at most `max_frames` frames and at least one patch of them.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), FeatureError> {
        let [_, channels, mels, frames] = dims;
        let patch = self.patch_embed.weight.dims()[2];
        let [rows, cols, _] = self.positions.dims();
        if channels != 1 || mels / patch != rows || mels < patch {
            return Err(FeatureError::Shape(format!(
                "audio transformer expects [batch, 1, {} mels, frames], got {dims:?}",
                rows * patch
            )));
        }
        if frames < patch || frames / patch > cols {
            return Err(FeatureError::Shape(format!(
                "audio transformer takes {patch} to {} frames, got {frames}",
                cols * patch
            )));
        }
        Ok(())
    }

    /// [`Encoder::encode_full`] after [`Self::check_input`]: an error, not a panic, for input
    /// of the wrong shape or too many frames.
    pub fn try_encode_full(&self, input: Tensor<B, 4>) -> Result<EncoderOutput<B>, FeatureError> {
        self.check_input(input.dims())?;
        Ok(self.encode_full(input))
    }
}

impl<B: Backend> Encoder<B> for AudioTransformer<B> {
    /// Log-mel spectrograms, `[batch, 1, n_mels, frames]` with `frames <= max_frames`.
    type Input = Tensor<B, 4>;

    /// # Panics
    /// On input that [`AudioTransformer::check_input`] rejects; use
    /// [`AudioTransformer::try_encode_full`] for input not yet checked.
    fn encode_full(&self, input: Tensor<B, 4>) -> EncoderOutput<B> {
        let patches = conv2d(&self.patch_embed, input); // [batch, h, mels/p, frames/p]
        let [batch, h, rows, cols] = patches.dims();
        let tokens = patches.reshape([batch, h, rows * cols]).swap_dims(1, 2); // [batch, n, h]
        // The grid's positions for the rows and columns present (shorter clips use the left part).
        let positions = self
            .positions
            .val()
            .narrow(0, 0, rows)
            .narrow(1, 0, cols)
            .reshape([1, rows * cols, h]);
        let cls = self.cls.val().expand([batch, 1, h]);
        let x = Tensor::cat(vec![cls, tokens + positions], 1); // [batch, n + 1, h]
        let x = self.norm.forward(self.encoder.forward(x, None)); // [batch, n + 1, h]
        let pooled = x.clone().narrow(1, 0, 1).reshape([batch, h]); // [batch, h]
        EncoderOutput {
            pooled: self.proj.forward(pooled),
            sequence: Some(x),
        }
    }

    fn output_dim(&self) -> usize {
        self.proj.weight.dims()[1]
    }
}
