//! Fused element-wise kernels for the CPU backend, with plain Burn ops everywhere else.
//!
//! Flex runs each element-wise op on one core with scalar `exp`, and autodiff records every
//! op of an activation as its own node with its own saved tensors. The functions here take
//! one pass instead, over both cores, with a vectorizable `exp`, on `Flex` (inference) and
//! on `Autodiff<Flex>` (training, with a hand-written backward). Any other backend, dtype or
//! autodiff checkpointing strategy gets exactly the plain ops, so callers stay generic over
//! `Backend` and nothing changes on wgpu, CUDA or ndarray.
//!
//! The backend is recognised by its type at run time ([`std::any::TypeId`]), which keeps the
//! extension out of every model's trait bounds; `tests/fused.rs` checks each kernel against
//! the plain ops on ndarray, forward and backward.

#[cfg(feature = "flex")]
mod attention;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod kernels;
#[cfg(feature = "flex")]
mod linear;

use burn::tensor::{Tensor, activation, backend::Backend};

/// The constant of OpenAI CLIP's GELU approximation.
pub const QUICK_GELU_ALPHA: f32 = 1.702;

/// `x * sigmoid(1.702 x)` (transformers' `QuickGELUActivation`), fused on Flex.
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "flex")]
    let x = match flex::quick_gelu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    quick_gelu_plain(x)
}

/// [`quick_gelu`] as plain Burn ops: the reference the fused kernels are tested against.
pub fn quick_gelu_plain<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * activation::sigmoid(x * QUICK_GELU_ALPHA)
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

/// `layer.forward(x)`; on `Autodiff<Flex>` with a one-GEMM weight gradient over all rows
/// instead of Burn's per-batch matmuls and sum.
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

/// Scaled dot-product attention of `[batch, heads, tokens, head_dim]` q, k, v with an optional
/// mask (`true`: masked out) and an explicit scale: Burn's attention op (Flex's fused kernel
/// at inference), and on `Autodiff<Flex>` one differentiable op with its own backward.
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
