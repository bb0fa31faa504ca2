//! 3D max pooling over `[batch, channels, time, height, width]`, which Burn 0.21 lacks.
//!
//! A max over a `kt x kh x kw` box is the max over `kt` frames of the max over each frame's
//! `kh x kw` window, so the op is two of Burn's 2D max poolings: the spatial one on
//! `[batch, channels * time, h, w]`, then a `kt x 1` one on `[batch, channels, time, h' * w']`.
//! Both pad with negative infinity as PyTorch does; autodiff differentiates each (a gradient
//! goes to the element that won, as in PyTorch's `max_pool3d`). `tests/pool3d.rs` checks
//! values and gradients against PyTorch.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::module::max_pool2d;
use burn::tensor::{Tensor, backend::Backend};

/// Kernel, stride and padding of a [`MaxPool3d`], each as (time, height, width).
#[derive(Config, Debug, PartialEq)]
pub struct MaxPool3dConfig {
    /// Window size.
    pub kernel_size: [usize; 3],
    /// Step between windows (PyTorch's default is the kernel size).
    pub stride: [usize; 3],
    /// Implicit negative-infinity padding on both sides.
    #[config(default = "[0, 0, 0]")]
    pub padding: [usize; 3],
}

/// 3D max pooling (PyTorch `nn.MaxPool3d` with dilation 1 and `ceil_mode=False`).
#[derive(Module, Clone, Debug)]
pub struct MaxPool3d {
    /// Window size (time, height, width).
    pub kernel_size: [usize; 3],
    /// Step (time, height, width).
    pub stride: [usize; 3],
    /// Padding (time, height, width).
    pub padding: [usize; 3],
}

impl MaxPool3dConfig {
    /// The pooling layer.
    pub fn init(&self) -> MaxPool3d {
        MaxPool3d {
            kernel_size: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
        }
    }
}

impl MaxPool3d {
    /// Pools `[batch, channels, time, height, width]`.
    pub fn forward<B: Backend>(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        max_pool3d(x, self.kernel_size, self.stride, self.padding)
    }
}

/// 3D max pooling of `[batch, channels, time, height, width]` (see the module notes).
pub fn max_pool3d<B: Backend>(
    x: Tensor<B, 5>,
    [kt, kh, kw]: [usize; 3],
    [st, sh, sw]: [usize; 3],
    [pt, ph, pw]: [usize; 3],
) -> Tensor<B, 5> {
    let [b, c, t, h, w] = x.dims();
    let spatial = if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) {
        x.reshape([b, c * t, h, w])
    } else {
        max_pool2d(
            x.reshape([b, c * t, h, w]),
            [kh, kw],
            [sh, sw],
            [ph, pw],
            [1, 1],
            false,
        )
    };
    let [_, _, h2, w2] = spatial.dims();
    let frames = spatial.reshape([b, c, t, h2 * w2]);
    let pooled = if (kt, st, pt) == (1, 1, 0) {
        frames
    } else {
        max_pool2d(frames, [kt, 1], [st, 1], [pt, 0], [1, 1], false)
    };
    let [_, _, t2, _] = pooled.dims();
    pooled.reshape([b, c, t2, h2, w2])
}

/// Global average pooling of `[batch, channels, time, height, width]` to `[batch, channels]`
/// (PyTorch `AdaptiveAvgPool3d(1)` then `flatten(1)`).
pub fn global_avg_pool3d<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 2> {
    let [b, c, t, h, w] = x.dims();
    x.reshape([b, c, t * h * w]).mean_dim(2).reshape([b, c])
}
