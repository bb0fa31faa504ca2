//! Batch normalization (Burn's `BatchNorm`, any rank) as per-channel passes over rayon's pool:
//! running statistics at inference on Flex; batch statistics, the running-statistics update
//! and a hand-written backward in training on `Autodiff<Flex>`.
//!
//! Burn's `BatchNorm` subtracts, divides, scales and shifts by `[1, C, 1, ...]` tensors
//! broadcast over the input, and Flex walks every broadcast through its generic strided
//! iterator on one core; in training autodiff then runs the same broadcasts backwards. On the
//! Intel Xeon of 2026-12-02 that was about a third of a video training step
//! (docs/performance.md, "Fifth session"). Here the statistics are one
//! reduction per channel and the output one multiply-add per element, with Burn's semantics:
//! biased batch variance, for the output and for the running variance alike.

use std::any::TypeId;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::nn::BatchNorm;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use rayon::prelude::*;

use super::flex::{AdFlex, AdTensor, cast, dense, elements, register_grads, tensor, values};
use super::kernels::{dot, sum_by};

/// `batch` samples of `channels` planes of `spatial` elements.
#[derive(Debug, Clone, Copy)]
struct Layout {
    batch: usize,
    channels: usize,
    spatial: usize,
}

impl Layout {
    /// Elements per channel over the batch.
    fn count(&self) -> usize {
        self.batch * self.spatial
    }

    /// `f(plane)` summed in f64 over channel `c`'s plane of every sample.
    fn per_channel(&self, x: &[f32], c: usize, f: impl Fn(&[f32]) -> f32) -> f64 {
        (0..self.batch)
            .map(|n| {
                let start = (n * self.channels + c) * self.spatial;
                f(&x[start..start + self.spatial]) as f64
            })
            .sum()
    }
}

/// Each channel's batch mean and biased variance.
fn statistics(x: &[f32], l: Layout) -> (Vec<f32>, Vec<f32>) {
    let count = l.count().max(1) as f64;
    (0..l.channels)
        .into_par_iter()
        .map(|c| {
            let mean = l.per_channel(x, c, |p| sum_by(p, |v| v)) / count;
            let m = mean as f32;
            let var = l.per_channel(x, c, |p| sum_by(p, |v| (v - m) * (v - m))) / count;
            (m, var as f32)
        })
        .unzip()
}

/// `x * scale[c] + shift[c]` per channel plane, into a new buffer.
fn affine(x: &[f32], l: Layout, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(l.spatial.max(1))
        .zip(x.par_chunks(l.spatial.max(1)))
        .enumerate()
        .for_each(|(i, (o, x))| {
            let (a, b) = (scale[i % l.channels], shift[i % l.channels]);
            for (o, &x) in o.iter_mut().zip(x) {
                *o = x * a + b;
            }
        });
    out
}

/// The scale and shift that normalize by `mean` and `var` then apply gamma and beta.
fn scale_shift(mean: &[f32], rstd: &[f32], gamma: &[f32], beta: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(rstd).map(|(g, r)| g * r).collect();
    let shift = beta
        .iter()
        .zip(mean.iter().zip(&scale))
        .map(|(b, (m, s))| b - m * s)
        .collect();
    (scale, shift)
}

/// Gradients of the input, gamma and beta from the output's.
#[derive(Debug)]
struct BatchNormBackward {
    layout: Layout,
}

impl Backward<Flex, 3> for BatchNormBackward {
    /// The input, each channel's batch mean and reciprocal standard deviation, and gamma.
    type State = (FlexTensor, Vec<f32>, Vec<f32>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let l = self.layout;
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let (x, mean, rstd, gamma) = ops.state;
        let shape = x.shape();
        let x = dense(&x);
        let (xs, gs) = (elements(&x), elements(&grad));
        // Per channel: sum(gy) (beta's gradient) and sum(gy * xhat) (gamma's).
        let (sum_g, sum_gx): (Vec<f32>, Vec<f32>) = (0..l.channels)
            .into_par_iter()
            .map(|c| {
                let sg = l.per_channel(gs, c, |p| sum_by(p, |v| v));
                let sgx = (0..l.batch)
                    .map(|n| {
                        let s = (n * l.channels + c) * l.spatial;
                        dot(&gs[s..s + l.spatial], &xs[s..s + l.spatial]) as f64
                    })
                    .sum::<f64>();
                let xhat = (sgx - mean[c] as f64 * sg) * rstd[c] as f64;
                (sg as f32, xhat as f32)
            })
            .unzip();
        // dx = a gy + k x + k0 per channel, the batch statistics' own gradients folded in.
        let m = l.count().max(1) as f32;
        let mut dx = vec![0.0f32; xs.len()];
        dx.par_chunks_mut(l.spatial.max(1))
            .zip(
                gs.par_chunks(l.spatial.max(1))
                    .zip(xs.par_chunks(l.spatial.max(1))),
            )
            .enumerate()
            .for_each(|(i, (out, (g, x)))| {
                let c = i % l.channels;
                let a = gamma[c] * rstd[c];
                let k = -a * rstd[c] * sum_gx[c] / m;
                let k0 = -a * sum_g[c] / m - k * mean[c];
                for ((o, &g), &x) in out.iter_mut().zip(g).zip(x) {
                    *o = a * g + k * x + k0;
                }
            });
        let c = [l.channels];
        register_grads(
            grads,
            ops.parents.map(|p| p.map(|n| n.id)),
            [(dx, shape), (sum_gx, c.into()), (sum_g, c.into())],
        );
    }
}

/// `norm.forward(x)` when `B` is Flex (running statistics) or `Autodiff<Flex>` (batch
/// statistics, running statistics updated as Burn does) and `x` is `f32` with the norm's
/// channels on axis 1; `Err(x)` otherwise.
pub fn batch_norm<B: Backend, const D: usize>(
    norm: &BatchNorm<B>,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let is_flex = TypeId::of::<B>() == TypeId::of::<Flex>();
    let is_ad_flex = TypeId::of::<B>() == TypeId::of::<AdFlex>();
    let dims = x.dims();
    let [channels] = norm.gamma.dims();
    if !(is_flex || is_ad_flex) || x.dtype() != DType::F32 || D < 2 || dims[1] != channels {
        return Err(x);
    }
    let l = Layout {
        batch: dims[0],
        channels,
        spatial: dims[2..].iter().product(),
    };
    let raw = |t: Tensor<B, 1>| -> FlexTensor {
        let p: FloatTensor<B> = t.into_primitive().tensor();
        if is_flex {
            cast(p).expect("B is Flex")
        } else {
            cast::<_, AdTensor>(p)
                .expect("B is Autodiff<Flex>")
                .primitive
        }
    };
    let (gamma, beta) = (
        values(&raw(norm.gamma.val())),
        values(&raw(norm.beta.val())),
    );
    let epsilon = norm.epsilon;
    let rstd_of = |var: &[f32]| -> Vec<f32> {
        var.iter()
            .map(|&v| 1.0 / (v as f64 + epsilon).sqrt() as f32)
            .collect()
    };
    let x_prim: FloatTensor<B> = x.into_primitive().tensor();
    let y: FloatTensor<B> = if is_flex {
        let mean = values(&raw(norm.running_mean.value()));
        let rstd = rstd_of(&values(&raw(norm.running_var.value())));
        let (scale, shift) = scale_shift(&mean, &rstd, &gamma, &beta);
        let x: FlexTensor = dense(&cast(x_prim).expect("B is Flex"));
        cast(tensor(affine(elements(&x), l, &scale, &shift), x.shape())).expect("B is Flex")
    } else {
        let x: AdTensor = cast(x_prim).expect("B is Autodiff<Flex>");
        let dense_x = dense(&x.primitive);
        let (mean, var) = statistics(elements(&dense_x), l);
        update_running(norm, &mean, &var);
        let rstd = rstd_of(&var);
        let (scale, shift) = scale_shift(&mean, &rstd, &gamma, &beta);
        let y = tensor(
            affine(elements(&dense_x), l, &scale, &shift),
            dense_x.shape(),
        );
        let ad = |t: Tensor<B, 1>| -> AdTensor {
            cast(t.into_primitive().tensor()).expect("B is Autodiff<Flex>")
        };
        let (g, b) = (ad(norm.gamma.val()), ad(norm.beta.val()));
        let nodes = [x.node.clone(), g.node.clone(), b.node.clone()];
        let out = match (BatchNormBackward { layout: l })
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((dense_x, mean, rstd, gamma), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        cast(out).expect("B is Autodiff<Flex>")
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
}

/// `running = running * (1 - momentum) + batch * momentum` for the mean and the (biased)
/// variance, as Burn's `BatchNorm` updates them in training.
fn update_running<B: Backend>(norm: &BatchNorm<B>, mean: &[f32], var: &[f32]) {
    let m = norm.momentum;
    for (state, batch) in [(&norm.running_mean, mean), (&norm.running_var, var)] {
        let old = state.value_sync();
        let device = old.device();
        let old = old.into_data().convert::<f32>();
        let new: Vec<f32> = old
            .iter::<f32>()
            .zip(batch)
            .map(|(o, &b)| o * (1.0 - m) as f32 + b * m as f32)
            .collect();
        let len = new.len();
        state.update(Tensor::from_data(TensorData::new(new, [len]), &device).detach());
    }
}
