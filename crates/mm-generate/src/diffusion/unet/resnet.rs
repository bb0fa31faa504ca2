//! The UNet's convolutional pieces: the timestep embedding, ResNet blocks with the timestep
//! added, and the down- and up-sampling convolutions (diffusers `embeddings.py`, `resnet.py`,
//! `downsampling.py`, `upsampling.py`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use mm_core::nn::fused::conv2d;
use mm_core::nn::fused::{group_norm_silu, silu};

/// A `k x k` convolution with "same" padding (stride 1) or the given stride.
pub fn conv<B: Backend>(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .init(device)
}

/// Sinusoidal timestep features (diffusers `embeddings.py`, `get_timestep_embedding`, with
/// max_period 10000 and scale 1).
///
/// # Shapes
/// - `timesteps`: `[batch]`; output: `[batch, dim]`.
pub fn timestep_features<B: Backend>(
    timesteps: Tensor<B, 1>,
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> Tensor<B, 2> {
    let half = dim / 2;
    let device = timesteps.device();
    // exp(-ln(10000) * i / (half - shift)), in f32 as torch computes it.
    let freqs: Vec<f32> = (0..half)
        .map(|i| {
            let exponent = -(10000f32.ln()) * i as f32;
            (exponent / (half as f32 - freq_shift as f32)).exp()
        })
        .collect();
    let freqs = Tensor::<B, 2>::from_data(TensorData::new(freqs, [1, half]), &device);
    let [batch] = timesteps.dims();
    let args = timesteps.reshape([batch, 1]) * freqs; // [batch, half]
    let (sin, cos) = (args.clone().sin(), args.cos());
    let emb = if flip_sin_to_cos {
        Tensor::cat(vec![cos, sin], 1)
    } else {
        Tensor::cat(vec![sin, cos], 1)
    };
    if dim % 2 == 1 {
        let pad = Tensor::zeros([batch, 1], &device);
        Tensor::cat(vec![emb, pad], 1)
    } else {
        emb
    }
}

/// The timestep MLP (diffusers `TimestepEmbedding`: linear, SiLU, linear).
#[derive(Module, Debug)]
pub struct TimestepEmbedding<B: Backend> {
    /// Features to embedding width.
    pub linear_1: Linear<B>,
    /// Embedding to embedding.
    pub linear_2: Linear<B>,
}

impl<B: Backend> TimestepEmbedding<B> {
    /// `input` sinusoid features to `dim`.
    pub fn new(input: usize, dim: usize, device: &B::Device) -> Self {
        Self {
            linear_1: LinearConfig::new(input, dim).init(device),
            linear_2: LinearConfig::new(dim, dim).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, input]`; output: `[batch, dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.linear_2.forward(silu(self.linear_1.forward(x)))
    }
}

/// A ResNet block with the timestep embedding added between its convolutions (diffusers
/// `ResnetBlock2D`, `time_embedding_norm="default"`); the VAE's blocks have no timestep.
#[derive(Module, Debug)]
pub struct ResnetBlock2D<B: Backend> {
    /// First norm.
    pub norm1: GroupNorm<B>,
    /// First convolution.
    pub conv1: Conv2d<B>,
    /// Timestep embedding to channels (none in the VAE).
    pub time_emb_proj: Option<Linear<B>>,
    /// Second norm.
    pub norm2: GroupNorm<B>,
    /// Second convolution.
    pub conv2: Conv2d<B>,
    /// 1x1 convolution of the input when the channel count changes.
    pub conv_shortcut: Option<Conv2d<B>>,
    /// The residual sum is divided by this.
    #[module(skip)]
    pub output_scale_factor: f64,
}

impl<B: Backend> ResnetBlock2D<B> {
    /// A block from `channels[0]` to `channels[1]`, taking a `temb`-wide timestep embedding
    /// if any.
    pub fn new(
        channels: [usize; 2],
        temb: Option<usize>,
        groups: usize,
        eps: f64,
        output_scale_factor: f64,
        device: &B::Device,
    ) -> Self {
        let [cin, cout] = channels;
        let norm = |c| {
            GroupNormConfig::new(groups, c)
                .with_epsilon(eps)
                .init(device)
        };
        Self {
            norm1: norm(cin),
            conv1: conv([cin, cout], 3, 1, 1, device),
            time_emb_proj: temb.map(|t| LinearConfig::new(t, cout).init(device)),
            norm2: norm(cout),
            conv2: conv([cout, cout], 3, 1, 1, device),
            conv_shortcut: (cin != cout).then(|| conv([cin, cout], 1, 1, 0, device)),
            output_scale_factor,
        }
    }

    // diffusers `resnet.py`, `ResnetBlock2D.forward` (dropout 0 at inference).
    /// # Shapes
    /// - `x`: `[batch, in, h, w]`; `temb`: `[batch, temb]`; output `[batch, out, h, w]`.
    pub fn forward(&self, x: Tensor<B, 4>, temb: Option<Tensor<B, 2>>) -> Tensor<B, 4> {
        let mut h = conv2d(&self.conv1, group_norm_silu(&self.norm1, x.clone()));
        if let (Some(proj), Some(temb)) = (&self.time_emb_proj, temb) {
            let [batch, channels, _, _] = h.dims();
            h = h + proj.forward(silu(temb)).reshape([batch, channels, 1, 1]);
        }
        let h = conv2d(&self.conv2, group_norm_silu(&self.norm2, h));
        let x = match &self.conv_shortcut {
            Some(c) => conv2d(c, x),
            None => x,
        };
        let out = x + h;
        if self.output_scale_factor == 1.0 {
            out
        } else {
            out.div_scalar(self.output_scale_factor)
        }
    }
}

/// Halves the resolution with a stride-2 3x3 convolution (diffusers `Downsample2D`).
#[derive(Module, Debug)]
pub struct Downsample2D<B: Backend> {
    /// The strided convolution.
    pub conv: Conv2d<B>,
    /// Its padding; 0 pads one row and column at the bottom right first, as diffusers does.
    #[module(skip)]
    pub padding: usize,
}

impl<B: Backend> Downsample2D<B> {
    /// `channels` to `channels`.
    pub fn new(channels: usize, padding: usize, device: &B::Device) -> Self {
        Self {
            conv: conv([channels, channels], 3, 2, padding, device),
            padding,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, c, h, w]`; output `[batch, c, h/2, w/2]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = if self.padding == 0 {
            x.pad((0, 1, 0, 1), 0.0f32)
        } else {
            x
        };
        conv2d(&self.conv, x)
    }
}

/// Doubles the resolution: nearest-neighbour, then a 3x3 convolution (diffusers `Upsample2D`).
#[derive(Module, Debug)]
pub struct Upsample2D<B: Backend> {
    /// The convolution after upsampling.
    pub conv: Conv2d<B>,
}

impl<B: Backend> Upsample2D<B> {
    /// `channels` to `channels`.
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            conv: conv([channels, channels], 3, 1, 1, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, c, h, w]`; output `[batch, c, 2h, 2w]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        // Each pixel repeated into a 2x2 square: [b, c, h, 1, w, 1] -> [b, c, 2h, 2w].
        let x = x
            .reshape([b, c, h, 1, w, 1])
            .repeat_dim(3, 2)
            .repeat_dim(5, 2)
            .reshape([b, c, 2 * h, 2 * w]);
        conv2d(&self.conv, x)
    }
}
