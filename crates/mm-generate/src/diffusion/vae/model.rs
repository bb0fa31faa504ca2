//! `AutoencoderKL`: the encoder to a diagonal Gaussian over latents, and the decoder back to
//! pixels (diffusers `autoencoder_kl.py`, `vae.py`: `Encoder`, `Decoder`,
//! `DiagonalGaussianDistribution`; blocks from `unet_2d_blocks.py`).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::tensor::{Tensor, backend::Backend};
use mm_core::nn::fused::{attention, group_norm, group_norm_silu, linear};

use super::config::AutoencoderKLConfig;
use crate::diffusion::unet::resnet::{Downsample2D, ResnetBlock2D, Upsample2D, conv};
use mm_core::nn::fused::conv2d;

/// The ResNet blocks' and norms' epsilon in diffusers' VAE.
const EPS: f64 = 1e-6;

/// Single-head self-attention over the pixels with a group norm and a residual (diffusers
/// `Attention` as `UNetMidBlock2D` builds it for the VAE: biased projections, one head).
#[derive(Module, Debug)]
pub struct VaeAttention<B: Backend> {
    /// Norm of the input.
    pub group_norm: GroupNorm<B>,
    /// Query projection.
    pub to_q: Linear<B>,
    /// Key projection.
    pub to_k: Linear<B>,
    /// Value projection.
    pub to_v: Linear<B>,
    /// Output projection (`to_out.0`).
    pub to_out: Linear<B>,
}

impl<B: Backend> VaeAttention<B> {
    fn new(channels: usize, groups: usize, device: &B::Device) -> Self {
        let proj = || LinearConfig::new(channels, channels).init(device);
        Self {
            group_norm: GroupNormConfig::new(groups, channels)
                .with_epsilon(EPS)
                .init(device),
            to_q: proj(),
            to_k: proj(),
            to_v: proj(),
            to_out: proj(),
        }
    }

    // diffusers `attention_processor.py`, `AttnProcessor2_0.__call__` on 4-D input.
    /// # Shapes
    /// - `x`: `[batch, c, h, w]`; output the same.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        // [b, c, h, w] -> [b, 1 head, h*w, c]
        let tokens = group_norm(&self.group_norm, x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let head = |t: Tensor<B, 3>| t.reshape([b, 1, h * w, c]);
        let q = head(linear(&self.to_q, tokens.clone()));
        let k = head(linear(&self.to_k, tokens.clone()));
        let v = head(linear(&self.to_v, tokens));
        let out = attention(q, k, v, None, (c as f64).powf(-0.5)).reshape([b, h * w, c]);
        let out = linear(&self.to_out, out)
            .swap_dims(1, 2)
            .reshape([b, c, h, w]);
        out + x
    }
}

/// The middle block: ResNet, attention, ResNet (diffusers `UNetMidBlock2D`, no timestep).
#[derive(Module, Debug)]
pub struct VaeMidBlock<B: Backend> {
    /// The attention (absent when `mid_block_add_attention` is false).
    pub attentions: Vec<VaeAttention<B>>,
    /// Two ResNet blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
}

impl<B: Backend> VaeMidBlock<B> {
    fn new(c: usize, groups: usize, with_attention: bool, device: &B::Device) -> Self {
        let resnet = || ResnetBlock2D::new([c, c], None, groups, EPS, 1.0, device);
        Self {
            attentions: with_attention
                .then(|| VaeAttention::new(c, groups, device))
                .into_iter()
                .collect(),
            resnets: vec![resnet(), resnet()],
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x, None);
        if let Some(attn) = self.attentions.first() {
            x = attn.forward(x);
        }
        self.resnets[1].forward(x, None)
    }
}

/// An encoder or decoder block: ResNet blocks, then a resampler.
#[derive(Module, Debug)]
pub struct VaeBlock<B: Backend> {
    /// ResNet blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// Encoder: the downsampler (absent in the last block).
    pub downsamplers: Vec<Downsample2D<B>>,
    /// Decoder: the upsampler (absent in the last block).
    pub upsamplers: Vec<Upsample2D<B>>,
}

impl<B: Backend> VaeBlock<B> {
    fn resnets(
        cin: usize,
        cout: usize,
        layers: usize,
        groups: usize,
        device: &B::Device,
    ) -> Vec<ResnetBlock2D<B>> {
        (0..layers)
            .map(|i| {
                let c = if i == 0 { cin } else { cout };
                ResnetBlock2D::new([c, cout], None, groups, EPS, 1.0, device)
            })
            .collect()
    }

    fn forward(&self, mut x: Tensor<B, 4>) -> Tensor<B, 4> {
        for r in &self.resnets {
            x = r.forward(x, None);
        }
        for d in &self.downsamplers {
            x = d.forward(x);
        }
        for u in &self.upsamplers {
            x = u.forward(x);
        }
        x
    }
}

/// Pixels to the latent Gaussian's moments (diffusers `Encoder`).
#[derive(Module, Debug)]
pub struct VaeEncoder<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// Down blocks (`DownEncoderBlock2D`).
    pub down_blocks: Vec<VaeBlock<B>>,
    /// The middle block.
    pub mid_block: VaeMidBlock<B>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// To twice the latent channels (mean and log-variance).
    pub conv_out: Conv2d<B>,
}

/// Latents to pixels (diffusers `Decoder`).
#[derive(Module, Debug)]
pub struct VaeDecoder<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// The middle block.
    pub mid_block: VaeMidBlock<B>,
    /// Up blocks (`UpDecoderBlock2D`).
    pub up_blocks: Vec<VaeBlock<B>>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// To image channels.
    pub conv_out: Conv2d<B>,
}

/// The KL autoencoder of latent diffusion.
#[derive(Module, Debug)]
pub struct AutoencoderKL<B: Backend> {
    /// The encoder.
    pub encoder: VaeEncoder<B>,
    /// The decoder.
    pub decoder: VaeDecoder<B>,
    /// 1x1 convolution of the moments.
    pub quant_conv: Option<Conv2d<B>>,
    /// 1x1 convolution of the latents before decoding.
    pub post_quant_conv: Option<Conv2d<B>>,
}

/// The encoder's diagonal Gaussian over latents (diffusers `DiagonalGaussianDistribution`).
#[derive(Debug, Clone)]
pub struct LatentDistribution<B: Backend> {
    /// Its mean (also its mode).
    pub mean: Tensor<B, 4>,
    /// Its log-variance, clamped to [-30, 20].
    pub logvar: Tensor<B, 4>,
}

impl<B: Backend> LatentDistribution<B> {
    /// `mean + std * noise` with a standard normal `noise` shaped like the mean.
    pub fn sample(&self, noise: Tensor<B, 4>) -> Tensor<B, 4> {
        self.mean.clone() + self.logvar.clone().mul_scalar(0.5).exp() * noise
    }
}

impl AutoencoderKLConfig {
    /// Builds a randomly initialised autoencoder (the config must pass [`Self::validate`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> AutoencoderKL<B> {
        let chans = &self.block_out_channels;
        let n = chans.len();
        let g = self.norm_num_groups;
        let top = chans[n - 1];
        let norm = |c| GroupNormConfig::new(g, c).with_epsilon(EPS).init(device);
        let down_blocks = (0..n)
            .map(|i| VaeBlock {
                resnets: VaeBlock::resnets(
                    chans[i.saturating_sub(1)],
                    chans[i],
                    self.layers_per_block,
                    g,
                    device,
                ),
                downsamplers: (i + 1 < n)
                    .then(|| Downsample2D::new(chans[i], 0, device))
                    .into_iter()
                    .collect(),
                upsamplers: Vec::new(),
            })
            .collect();
        let up_blocks = (0..n)
            .map(|j| {
                let i = n - 1 - j;
                let cin = chans[(i + 1).min(n - 1)];
                VaeBlock {
                    resnets: VaeBlock::resnets(cin, chans[i], self.layers_per_block + 1, g, device),
                    downsamplers: Vec::new(),
                    upsamplers: (j + 1 < n)
                        .then(|| Upsample2D::new(chans[i], device))
                        .into_iter()
                        .collect(),
                }
            })
            .collect();
        let latent2 = 2 * self.latent_channels;
        AutoencoderKL {
            encoder: VaeEncoder {
                conv_in: conv([self.in_channels, chans[0]], 3, 1, 1, device),
                down_blocks,
                mid_block: VaeMidBlock::new(top, g, self.mid_block_add_attention, device),
                conv_norm_out: norm(top),
                conv_out: conv([top, latent2], 3, 1, 1, device),
            },
            decoder: VaeDecoder {
                conv_in: conv([self.latent_channels, top], 3, 1, 1, device),
                mid_block: VaeMidBlock::new(top, g, self.mid_block_add_attention, device),
                up_blocks,
                conv_norm_out: norm(chans[0]),
                conv_out: conv([chans[0], self.out_channels], 3, 1, 1, device),
            },
            quant_conv: self
                .use_quant_conv
                .then(|| conv([latent2, latent2], 1, 1, 0, device)),
            post_quant_conv: self.use_post_quant_conv.then(|| {
                conv(
                    [self.latent_channels, self.latent_channels],
                    1,
                    1,
                    0,
                    device,
                )
            }),
        }
    }
}

impl<B: Backend> AutoencoderKL<B> {
    /// The latent distribution of images in [-1, 1].
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`; mean and log-variance
    ///   `[batch, latent_channels, h / 2^(blocks-1), w / 2^(blocks-1)]`.
    pub fn encode(&self, x: Tensor<B, 4>) -> LatentDistribution<B> {
        let e = &self.encoder;
        let mut h = conv2d(&e.conv_in, x);
        for block in &e.down_blocks {
            h = block.forward(h);
        }
        h = e.mid_block.forward(h);
        let mut moments = conv2d(&e.conv_out, group_norm_silu(&e.conv_norm_out, h));
        if let Some(q) = &self.quant_conv {
            moments = conv2d(q, moments);
        }
        let [b, c2, hh, ww] = moments.dims();
        let c = c2 / 2;
        LatentDistribution {
            mean: moments.clone().slice([0..b, 0..c, 0..hh, 0..ww]),
            logvar: moments
                .slice([0..b, c..c2, 0..hh, 0..ww])
                .clamp(-30.0, 20.0),
        }
    }

    /// Images (about [-1, 1]) from unscaled latents.
    ///
    /// # Shapes
    /// - `z`: `[batch, latent_channels, h, w]`; output `[batch, out_channels, h * 2^(blocks-1), ...]`.
    pub fn decode(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let z = match &self.post_quant_conv {
            Some(p) => conv2d(p, z),
            None => z,
        };
        let d = &self.decoder;
        let mut h = d.mid_block.forward(conv2d(&d.conv_in, z));
        for block in &d.up_blocks {
            h = block.forward(h);
        }
        conv2d(&d.conv_out, group_norm_silu(&d.conv_norm_out, h))
    }

    /// Reconstruction through the mean latent (diffusers `AutoencoderKL.forward`).
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`; output `[batch, out_channels, h, w]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.decode(self.encode(x).mean)
    }
}
