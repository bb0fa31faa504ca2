//! The two encoders both localizers share: the visual CNN that keeps a map of positions
//! ([`VisualMap`]) and the audio CNN that turns a log-mel into one vector ([`AudioVector`]),
//! built of [`ConvBlock`]s.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::nn::fused::{batch_norm, conv2d};

/// Rows left of `n` after two stride-2, padding-1 3x3 convolutions.
fn bands_after_two_strides(n: usize) -> usize {
    let once = |n: usize| (n + 2 - 3) / 2 + 1;
    once(once(n))
}

/// Convolution, batch norm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> ConvBlock<B> {
    fn new(input: usize, output: usize, stride: usize, device: &B::Device) -> Self {
        Self::with_kernel(input, output, stride, 3, device)
    }

    fn with_kernel(
        input: usize,
        output: usize,
        stride: usize,
        kernel: usize,
        device: &B::Device,
    ) -> Self {
        let pad = kernel / 2;
        ConvBlock {
            conv: Conv2dConfig::new([input, output], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .init(device),
            bn: BatchNormConfig::new(output).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(batch_norm(&self.bn, conv2d(&self.conv, x)))
    }
}

/// The visual CNN: three 3x3 blocks, the first `pools` of them followed by max pooling (by
/// default all three: stride 8), then a 1x1 block. Each position sees 22 pixels (18 with two
/// poolings), less than a stamp, so a scene's peak has to sit on the thing that sounds rather
/// than anywhere that sees it.
#[derive(Module, Debug)]
pub struct VisualMap<B: Backend> {
    blocks: Vec<ConvBlock<B>>,
    pool: MaxPool2d,
    pools: usize,
}

impl<B: Backend> VisualMap<B> {
    /// Fresh weights: blocks of `width`, `2 width` and `4 width` channels, the first `pools`
    /// of them max-pooled, then a 1x1 block.
    pub fn new(width: usize, pools: usize, device: &B::Device) -> Self {
        let w = width;
        VisualMap {
            blocks: vec![
                ConvBlock::new(3, w, 1, device),
                ConvBlock::new(w, 2 * w, 1, device),
                ConvBlock::new(2 * w, 4 * w, 1, device),
                ConvBlock::with_kernel(4 * w, 4 * w, 1, 1, device),
            ],
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pools,
        }
    }

    /// The picture side on a pretrained backbone's feature maps (`channels` deep, already at
    /// the grid): two 1x1 blocks to `4 width`, no pooling.
    pub fn on_features(channels: usize, width: usize, device: &B::Device) -> Self {
        let w = width;
        VisualMap {
            blocks: vec![
                ConvBlock::with_kernel(channels, 4 * w, 1, 1, device),
                ConvBlock::with_kernel(4 * w, 4 * w, 1, 1, device),
            ],
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pools: 0,
        }
    }

    /// `[batch, 3, h, w]` -> `[batch, 4 width, h / 8, w / 8]` (feature maps keep their grid).
    pub fn forward(&self, image: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = image;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if i < self.pools {
                x = self.pool.forward(x);
            }
        }
        x
    }
}

/// The guide's audio CNN (two stride-2 blocks), averaged over time but not over frequency
/// (a convolution is blind to where in the spectrum a pattern sits; averaging frequency away
/// would make every pure tone look alike), projected.
#[derive(Module, Debug)]
pub struct AudioVector<B: Backend> {
    blocks: Vec<ConvBlock<B>>,
    proj: Linear<B>,
}

impl<B: Backend> AudioVector<B> {
    /// Fresh weights for log-mels of `n_mels` bands: two stride-2 blocks of `width` and
    /// `2 width` channels, projected to `4 width`.
    pub fn new(width: usize, n_mels: usize, device: &B::Device) -> Self {
        let w = width;
        AudioVector {
            blocks: vec![
                ConvBlock::new(1, w, 2, device),
                ConvBlock::new(w, 2 * w, 2, device),
            ],
            proj: LinearConfig::new(2 * w * bands_after_two_strides(n_mels), 4 * w).init(device),
        }
    }

    /// Fresh weights for embeddings of `dim` values made by another model
    /// (`super::sound_embeddings`): no convolutions, one projection to `4 width`.
    pub fn on_embedding(width: usize, dim: usize, device: &B::Device) -> Self {
        AudioVector {
            blocks: Vec::new(),
            proj: LinearConfig::new(dim, 4 * width).init(device),
        }
    }

    /// `[batch, 1, n_mels, frames]` (or `[batch, 1, 1, dim]` embeddings) -> `[batch, 4 width]`.
    pub fn forward(&self, mel: Tensor<B, 4>) -> Tensor<B, 2> {
        if self.blocks.is_empty() {
            let [batch, _, rows, dim] = mel.dims();
            return relu(self.proj.forward(mel.reshape([batch, rows * dim])));
        }
        let x = self.blocks[1].forward(self.blocks[0].forward(mel));
        let [batch, channels, bands, _] = x.dims();
        let pooled = x.mean_dim(3).reshape([batch, channels * bands]);
        relu(self.proj.forward(pooled))
    }
}
