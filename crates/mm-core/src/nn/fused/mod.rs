//! Fused CPU kernels (linear layers, convolutions, activations, attention, group and layer
//! norm, residual and position adds, and the AdamW step of `crate::train::AdamW`) for the
//! Flex backend, with plain Burn ops everywhere else.
//!
//! Flex runs each element-wise op on one core with scalar `exp`, and autodiff records every
//! op of an activation or a norm as its own node with its own saved tensors. The functions
//! here take one pass instead, over both cores, with a vectorizable `exp`, on `Flex`
//! (inference) and on `Autodiff<Flex>` (training, with a hand-written backward). Any other
//! backend, dtype or autodiff checkpointing strategy gets exactly the plain ops, so callers
//! stay generic over `Backend` and nothing changes on wgpu, CUDA or ndarray.
//!
//! The backend is recognised by its type at run time ([`std::any::TypeId`]), which keeps the
//! extension out of every model's trait bounds; `tests/core/fused.rs` checks each kernel against
//! the plain ops on ndarray, forward and backward.

#[cfg(feature = "flex")]
pub(crate) mod adamw;
#[cfg(feature = "flex")]
mod add;
#[cfg(feature = "flex")]
mod attention;
#[cfg(feature = "flex")]
mod batch_norm;
#[cfg(feature = "flex")]
mod conv;
#[cfg(feature = "flex")]
mod conv_gemm;
#[cfg(feature = "flex")]
mod conv_op;
#[cfg(all(test, feature = "flex"))]
mod determinism;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod gemm;
#[cfg(feature = "flex")]
mod gemm_blas;
#[cfg(feature = "flex")]
mod group_norm;
#[cfg(feature = "flex")]
mod kernels;
#[cfg(feature = "flex")]
mod layer_norm;
#[cfg(feature = "flex")]
mod linear;
#[cfg(feature = "flex")]
mod softmax;
// Pure Rust (no Flex types): `mm-audio`'s decibel conversion uses it on every backend.
pub mod wide;

use burn::tensor::{Tensor, activation, backend::Backend};

/// The constant of OpenAI CLIP's GELU approximation.
pub const QUICK_GELU_ALPHA: f32 = 1.702;

/// `x * sigmoid(1.702 x)` (transformers' `QuickGELUActivation`), fused on Flex.
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::gated(QUICK_GELU_ALPHA, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    quick_gelu_plain(x)
}

/// `x * sigmoid(x)` (SiLU, swish), fused on Flex as [`quick_gelu`] is.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::gated(1.0, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    activation::silu(x)
}

/// [`quick_gelu`] as plain Burn ops: the reference the fused kernels are tested against.
pub fn quick_gelu_plain<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * activation::sigmoid(x * QUICK_GELU_ALPHA)
}

/// `norm.forward(x)`: one parallel pass per `(sample, group)` on Flex and `Autodiff<Flex>`
/// (affine norms), Burn's `GroupNorm` everywhere else.
pub fn group_norm<B: Backend, const D: usize>(
    norm: &burn::nn::GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::group_norm(norm, x, false) {
        Ok(y) => return y,
        Err(x) => x,
    };
    norm.forward(x)
}

/// `silu(norm.forward(x))`, the UNet's and the VAE's norm-then-activate, fused as
/// [`group_norm`] is.
pub fn group_norm_silu<B: Backend, const D: usize>(
    norm: &burn::nn::GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::group_norm(norm, x, true) {
        Ok(y) => return y,
        Err(x) => x,
    };
    activation::silu(norm.forward(x))
}

/// `norm.forward(x)` for a layer norm built with `epsilon` (Burn keeps it private, so the
/// caller passes it again); on `Autodiff<Flex>` one differentiable op with a one-pass
/// backward instead of Burn's nine-node decomposition.
pub fn layer_norm<B: Backend, const D: usize>(
    norm: &burn::nn::LayerNorm<B>,
    x: Tensor<B, D>,
    epsilon: f64,
) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::layer_norm(norm, x, epsilon) {
        Ok(y) => return y,
        Err(x) => x,
    };
    let _ = epsilon;
    norm.forward(x)
}

/// `[a, b, c, d]` to `[a, c, b, d]`, laid out contiguously: how attention splits heads
/// (`[batch, tokens, heads, head_dim]` to `[batch, heads, tokens, head_dim]`) and merges them
/// back. One parallel row copy on Flex; elsewhere `swap_dims(1, 2)` (a view, copied later by
/// whichever op needs it contiguous).
pub fn swap_middle<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let x = match flex::swap_middle(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    x.swap_dims(1, 2)
}

/// `x + y`, where `y` is `x`'s shape or 1 on leading axes (a residual sum, position
/// embeddings over a batch); on Flex and `Autodiff<Flex>` one pass over both cores, whose
/// backward sums `y`'s gradient over the repeats in one pass.
pub fn add<B: Backend, const D: usize>(x: Tensor<B, D>, y: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let (x, y) = match add::add(x, y) {
        Ok(z) => return z,
        Err(xy) => xy,
    };
    x + y
}

/// `layer.forward(x)`; on Flex and `Autodiff<Flex>` one GEMM over all rows that accumulates
/// onto the broadcast bias (no copy of the output, no second pass), and in training a weight
/// gradient that is one GEMM over all rows instead of Burn's per-batch matmuls and sum.
pub fn linear<B: Backend, const D: usize>(
    layer: &burn::nn::Linear<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::linear(layer, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    layer.forward(x)
}

/// `layer.forward(x)`; on Flex and `Autodiff<Flex>` (one group, `f32`) an im2col and one
/// GEMM per sample straight into the output, with a backward of one GEMM per sample for each
/// of the weight and input gradients, instead of Flex's layout copies and autodiff's
/// convolution-shaped backward.
pub fn conv2d<B: Backend>(layer: &burn::nn::conv::Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let x = match conv_op::conv2d(layer, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    layer.forward(x)
}

/// `layer.forward(x)`, fused as [`conv2d`] is (symmetric padding).
pub fn conv3d<B: Backend>(layer: &burn::nn::conv::Conv3d<B>, x: Tensor<B, 5>) -> Tensor<B, 5> {
    #[cfg(feature = "flex")]
    let x = match conv_op::conv3d(layer, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    layer.forward(x)
}

/// `norm.forward(x)` (`[batch, channels, ...]`); on Flex one parallel multiply-add by the
/// running statistics, on `Autodiff<Flex>` one pass for the batch statistics (the running
/// ones updated as Burn does), one for the output, and a one-pass backward, instead of
/// Burn's broadcast ops.
pub fn batch_norm<B: Backend, const D: usize>(
    norm: &burn::nn::BatchNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match batch_norm::batch_norm(norm, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    norm.forward(x)
}

/// Scaled dot-product attention of `[batch, heads, tokens, head_dim]` q, k, v with an optional
/// mask (`true`: masked out) and an explicit scale: on Flex two batched GEMMs around one
/// parallel softmax pass, on `Autodiff<Flex>` the same as one differentiable op with its own
/// backward, and Burn's attention op everywhere else. A query whose every key is masked gets
/// zeros on Flex (its softmax is undefined).
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, burn::tensor::Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let (q, k, v, mask) = match flex::attention(q, k, v, mask, scale) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    let options = burn::tensor::ops::AttentionModuleOptions {
        scale: Some(scale),
        ..Default::default()
    };
    burn::tensor::module::attention(q, k, v, mask, None, options)
}
