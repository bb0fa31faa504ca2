//! The guide's `AudioVisualSync`: a frame encoder and a spectrogram CNN, each projected into
//! one space and L2-normalized, trained with the symmetric contrastive loss over in-sync pairs
//! (the house's [`contrastive_loss`]).
//!
//! Two changes from the guide: the frame encoder sees a short window of frames stacked as
//! channels (SyncNet's input; a single frame, the guide's, shows no motion), and the
//! spectrogram CNN pools over frequency only, keeping the order of its time steps
//! (`keep_time`; the guide's global average, `keep_time = false`, measured as well on the
//! controlled set, docs/audio-visual.md).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::loss::{LogitScale, LogitScaleConfig, contrastive_loss};
use mm_core::nn::ConfigError;
use mm_core::nn::fused::conv2d;

/// Sizes of a [`SyncNet`].
#[derive(Config, Debug, PartialEq)]
pub struct SyncNetConfig {
    /// Frames per visual window.
    #[config(default = 5)]
    pub window: usize,
    /// Mel bands of the sound windows.
    #[config(default = 40)]
    pub n_mels: usize,
    /// Mel frames per sound window.
    #[config(default = 20)]
    pub mel_frames: usize,
    /// Channels of the first convolution of each encoder (then 2x, 4x).
    #[config(default = 32)]
    pub width: usize,
    /// Width of the shared space.
    #[config(default = 128)]
    pub embed: usize,
    /// Keep the sound's time steps (true) or average them away as the guide does (false).
    #[config(default = true)]
    pub keep_time: bool,
}

/// Frames stacked as channels: three 3x3 convolutions with ReLU (max pooling after the first
/// two), the strongest response anywhere in the frame per channel, a projection.
#[derive(Module, Debug)]
pub struct FrameStackEncoder<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    conv3: Conv2d<B>,
    pool: MaxPool2d,
    proj: Linear<B>,
}

/// Log-mel windows: two 3x3 convolutions with ReLU, pooled over frequency (and over time
/// unless `keep_time`), a projection.
#[derive(Module, Debug)]
pub struct SoundWindowEncoder<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    pool: MaxPool2d,
    proj: Linear<B>,
    keep_time: bool,
}

/// The synchronization model.
#[derive(Module, Debug)]
pub struct SyncNet<B: Backend> {
    /// Frame-window encoder.
    pub visual: FrameStackEncoder<B>,
    /// Sound-window encoder.
    pub audio: SoundWindowEncoder<B>,
    /// Learnable temperature of the contrastive loss.
    pub logit_scale: LogitScale<B>,
}

fn conv<B: Backend>(input: usize, output: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([input, output], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl SyncNetConfig {
    /// The model with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<SyncNet<B>, ConfigError> {
        if self.window == 0 || self.n_mels < 2 || self.mel_frames == 0 || self.width == 0 {
            return Err(ConfigError(format!("invalid sync model config {self:?}")));
        }
        let w = self.width;
        let sound_out = if self.keep_time {
            2 * w * self.mel_frames
        } else {
            2 * w
        };
        Ok(SyncNet {
            visual: FrameStackEncoder {
                conv1: conv(3 * self.window, w, device),
                conv2: conv(w, 2 * w, device),
                conv3: conv(2 * w, 4 * w, device),
                pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                proj: LinearConfig::new(4 * w, self.embed).init(device),
            },
            audio: SoundWindowEncoder {
                conv1: conv(1, w, device),
                conv2: conv(w, 2 * w, device),
                pool: MaxPool2dConfig::new([2, 1]).with_strides([2, 1]).init(),
                proj: LinearConfig::new(sound_out, self.embed).init(device),
                keep_time: self.keep_time,
            },
            logit_scale: LogitScaleConfig::new().init(device),
        })
    }
}

fn normalized<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-8);
    x / norm
}

impl<B: Backend> FrameStackEncoder<B> {
    /// `[batch, window * 3, h, w]` -> `[batch, embed]`, unit length.
    pub fn forward(&self, frames: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = self.pool.forward(relu(conv2d(&self.conv1, frames)));
        let h = self.pool.forward(relu(conv2d(&self.conv2, h)));
        let h = relu(conv2d(&self.conv3, h)); // [batch, 4w, h/4, w/4]
        let [batch, channels, _, _] = h.dims();
        let peak = h.max_dim(3).max_dim(2).reshape([batch, channels]);
        normalized(self.proj.forward(peak))
    }
}

impl<B: Backend> SoundWindowEncoder<B> {
    /// `[batch, 1, n_mels, mel_frames]` -> `[batch, embed]`, unit length.
    pub fn forward(&self, mel: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = self.pool.forward(relu(conv2d(&self.conv1, mel)));
        let h = relu(conv2d(&self.conv2, h)); // [batch, 2w, mels/2, frames]
        let [batch, channels, _, frames] = h.dims();
        let h = h.mean_dim(2).reshape([batch, channels, frames]);
        let flat = if self.keep_time {
            h.reshape([batch, channels * frames])
        } else {
            h.mean_dim(2).reshape([batch, channels])
        };
        normalized(self.proj.forward(flat))
    }
}

impl<B: Backend> SyncNet<B> {
    /// The contrastive loss of a batch of in-sync windows (row `i` of each is a pair).
    pub fn loss(&self, frames: Tensor<B, 4>, mel: Tensor<B, 4>) -> (Tensor<B, 1>, Tensor<B, 2>) {
        let (v, a) = (self.visual.forward(frames), self.audio.forward(mel));
        let similarity = v.clone().matmul(a.clone().transpose());
        (contrastive_loss(v, a, self.logit_scale.scale()), similarity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn embeddings_are_unit_length_in_both_pooling_modes() {
        let device = Default::default();
        for keep_time in [true, false] {
            let model = SyncNetConfig::new()
                .with_width(4)
                .with_embed(8)
                .with_keep_time(keep_time)
                .init::<B>(&device)
                .unwrap();
            let frames = Tensor::<B, 4>::random(
                [3, 15, 16, 16],
                burn::tensor::Distribution::Default,
                &device,
            );
            let mel = Tensor::<B, 4>::random(
                [3, 1, 40, 20],
                burn::tensor::Distribution::Default,
                &device,
            );
            let v = model.visual.forward(frames);
            let a = model.audio.forward(mel);
            assert_eq!(v.dims(), [3, 8]);
            let norms = a
                .powf_scalar(2.0)
                .sum_dim(1)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-4), "{norms:?}");
        }
        assert!(
            SyncNetConfig::new()
                .with_window(0)
                .init::<B>(&device)
                .is_err()
        );
    }
}
