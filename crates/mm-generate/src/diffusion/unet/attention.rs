//! The UNet's attention blocks: a spatial transformer over the feature map's pixels with
//! self-attention, cross-attention to the text states and a GEGLU feed-forward (diffusers
//! `transformer_2d.py`, `attention.py`, `attention_processor.py`).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Tensor, activation::gelu, backend::Backend};
use mm_core::nn::fused::{attention, group_norm, linear, swap_middle};

use super::resnet::conv;
use mm_core::nn::fused::conv2d;

/// Multi-head attention whose keys and values may come from another sequence (diffusers
/// `Attention` with no bias on q, k, v and a biased output projection).
#[derive(Module, Debug)]
pub struct CrossAttention<B: Backend> {
    /// Query projection.
    pub to_q: Linear<B>,
    /// Key projection (from the context's width).
    pub to_k: Linear<B>,
    /// Value projection (from the context's width).
    pub to_v: Linear<B>,
    /// Output projection (`to_out.0`).
    pub to_out: Linear<B>,
    /// Number of heads.
    #[module(skip)]
    pub heads: usize,
}

impl<B: Backend> CrossAttention<B> {
    /// `dim`-wide queries attending to `context`-wide keys and values.
    pub fn new(dim: usize, context: usize, heads: usize, device: &B::Device) -> Self {
        let proj = |i| LinearConfig::new(i, dim).with_bias(false).init(device);
        Self {
            to_q: proj(dim),
            to_k: proj(context),
            to_v: proj(context),
            to_out: LinearConfig::new(dim, dim).init(device),
            heads,
        }
    }

    // diffusers `attention_processor.py`, `AttnProcessor2_0.__call__` (no mask, no norms).
    /// # Shapes
    /// - `x`: `[batch, tokens, dim]`; `context`: `[batch, ctx_tokens, context]` (None: `x`);
    ///   output `[batch, tokens, dim]`.
    pub fn forward(&self, x: Tensor<B, 3>, context: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
        let [b, t, dim] = x.dims();
        let head_dim = dim / self.heads;
        let context = context.unwrap_or_else(|| x.clone());
        let split = |y: Tensor<B, 3>| {
            let [_, n, _] = y.dims();
            // [b, n, heads, head_dim] -> [b, heads, n, head_dim]
            swap_middle(y.reshape([b, n, self.heads, head_dim]))
        };
        let q = split(linear(&self.to_q, x));
        let k = split(linear(&self.to_k, context.clone()));
        let v = split(linear(&self.to_v, context));
        let out = attention(q, k, v, None, (head_dim as f64).powf(-0.5));
        // [b, heads, t, head_dim] -> [b, t, dim]
        linear(&self.to_out, swap_middle(out).reshape([b, t, dim]))
    }
}

/// The feed-forward with a GELU-gated linear unit (diffusers `FeedForward` with `GEGLU`).
#[derive(Module, Debug)]
pub struct GegluFeedForward<B: Backend> {
    /// `dim` to twice the inner width: value and gate (`net.0.proj`).
    pub proj: Linear<B>,
    /// Inner width back to `dim` (`net.2`).
    pub out: Linear<B>,
}

impl<B: Backend> GegluFeedForward<B> {
    /// Inner width `4 * dim`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            proj: LinearConfig::new(dim, dim * 8).init(device),
            out: LinearConfig::new(dim * 4, dim).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, tokens, dim]`; output the same.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = linear(&self.proj, x);
        let [b, t, two_inner] = h.dims();
        let inner = two_inner / 2;
        let value = h.clone().slice([0..b, 0..t, 0..inner]);
        let gate = h.slice([0..b, 0..t, inner..two_inner]);
        linear(&self.out, value * gelu(gate))
    }
}

/// Self-attention, cross-attention and feed-forward, each pre-normed with a residual
/// (diffusers `BasicTransformerBlock`, `norm_type="layer_norm"`).
#[derive(Module, Debug)]
pub struct BasicTransformerBlock<B: Backend> {
    /// Norm before self-attention.
    pub norm1: LayerNorm<B>,
    /// Self-attention.
    pub attn1: CrossAttention<B>,
    /// Norm before cross-attention.
    pub norm2: LayerNorm<B>,
    /// Cross-attention to the text states.
    pub attn2: CrossAttention<B>,
    /// Norm before the feed-forward.
    pub norm3: LayerNorm<B>,
    /// The feed-forward.
    pub ff: GegluFeedForward<B>,
}

impl<B: Backend> BasicTransformerBlock<B> {
    /// A block of width `dim` attending to `context`-wide states.
    pub fn new(dim: usize, context: usize, heads: usize, device: &B::Device) -> Self {
        let norm = || LayerNormConfig::new(dim).with_epsilon(1e-5).init(device);
        Self {
            norm1: norm(),
            attn1: CrossAttention::new(dim, dim, heads, device),
            norm2: norm(),
            attn2: CrossAttention::new(dim, context, heads, device),
            norm3: norm(),
            ff: GegluFeedForward::new(dim, device),
        }
    }

    // diffusers `attention.py`, `BasicTransformerBlock.forward`.
    /// # Shapes
    /// - `x`: `[batch, tokens, dim]`; `context`: `[batch, ctx_tokens, context]`.
    pub fn forward(&self, x: Tensor<B, 3>, context: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.attn1.forward(self.norm1.forward(x.clone()), None) + x;
        let x = self
            .attn2
            .forward(self.norm2.forward(x.clone()), Some(context))
            + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// A projection into or out of the transformer: a 1x1 convolution, or a linear layer on the
/// flattened pixels (`use_linear_projection`).
#[derive(Module, Debug)]
pub enum Projection<B: Backend> {
    /// 1x1 convolution on `[batch, c, h, w]`.
    Conv(Conv2d<B>),
    /// Linear on `[batch, h*w, c]`.
    Linear(Linear<B>),
}

/// The spatial transformer (diffusers `Transformer2DModel` on continuous input).
#[derive(Module, Debug)]
pub struct Transformer2D<B: Backend> {
    /// Group norm of the input (eps 1e-6).
    pub norm: GroupNorm<B>,
    /// Into the transformer's width.
    pub proj_in: Projection<B>,
    /// The blocks.
    pub transformer_blocks: Vec<BasicTransformerBlock<B>>,
    /// Back out.
    pub proj_out: Projection<B>,
}

impl<B: Backend> Transformer2D<B> {
    /// `channels` wide, `layers` blocks of `heads` heads, attending to `context`-wide states.
    pub fn new(
        channels: usize,
        context: usize,
        heads: usize,
        layers: usize,
        groups: usize,
        linear_projection: bool,
        device: &B::Device,
    ) -> Self {
        let proj = || match linear_projection {
            true => Projection::Linear(LinearConfig::new(channels, channels).init(device)),
            false => Projection::Conv(conv([channels, channels], 1, 1, 0, device)),
        };
        Self {
            norm: GroupNormConfig::new(groups, channels)
                .with_epsilon(1e-6)
                .init(device),
            proj_in: proj(),
            transformer_blocks: (0..layers)
                .map(|_| BasicTransformerBlock::new(channels, context, heads, device))
                .collect(),
            proj_out: proj(),
        }
    }

    // diffusers `transformer_2d.py`, `Transformer2DModel._operate_on_continuous_inputs` and
    // `_get_output_for_continuous_inputs`.
    /// # Shapes
    /// - `x`: `[batch, c, h, w]`; `context`: `[batch, ctx_tokens, context]`; output as `x`.
    pub fn forward(&self, x: Tensor<B, 4>, context: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let to_tokens = |y: Tensor<B, 4>| y.reshape([b, c, h * w]).swap_dims(1, 2); // [b, hw, c]
        let to_map = |y: Tensor<B, 3>| y.swap_dims(1, 2).reshape([b, c, h, w]);
        let normed = group_norm(&self.norm, x.clone());
        let mut tokens = match &self.proj_in {
            Projection::Conv(p) => to_tokens(conv2d(p, normed)),
            Projection::Linear(p) => linear(p, to_tokens(normed)),
        };
        for block in &self.transformer_blocks {
            tokens = block.forward(tokens, context.clone());
        }
        let out = match &self.proj_out {
            Projection::Conv(p) => conv2d(p, to_map(tokens)),
            Projection::Linear(p) => to_map(linear(p, tokens)),
        };
        out + x
    }
}
