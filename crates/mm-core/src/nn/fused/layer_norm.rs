//! Layer normalization over the last axis as one differentiable op on `Autodiff<Flex>`.
//!
//! Flex has a fused layer-norm forward, but Burn's autodiff has no layer-norm node: it
//! records Burn's default decomposition (mean, subtract, square, mean, add, square root,
//! divide, scale, shift), nine nodes with their saved `[rows, width]` intermediates, and
//! replays them backward one op at a time. Here the forward is one parallel pass over rows
//! that keeps each row's mean and `1 / std`, and the backward one more pass:
//! `dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))` with `dxhat = dy gamma`, and
//! gamma's and beta's gradients summed over rows per task and then across tasks in task
//! order, so that the sums are the same from run to run.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{TensorData, TensorMetadata};
use rayon::prelude::*;

use super::flex::{AdTensor, register_grads, values};
use super::kernels::{mean_rstd, written};
use super::wide::widest;

/// Rows per rayon task.
const ROWS: usize = 32;

/// `out = gamma * (x - mean) * rstd + beta` per row of `width`, written once; each row's
/// `(mean, rstd)` and the number of elements written.
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
    out: &mut [MaybeUninit<f32>],
) -> (Vec<(f32, f32)>, usize) {
    let width = gamma.len();
    if width == 0 {
        return (Vec::new(), 0);
    }
    let rows: Vec<((f32, f32), usize)> = out
        .par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .with_min_len(ROWS)
        .map(|(out, x)| {
            widest(
                #[inline(always)]
                || {
                    let (mean, rstd) = mean_rstd(x, epsilon);
                    for ((o, &v), (&g, &b)) in out.iter_mut().zip(x).zip(gamma.iter().zip(beta)) {
                        o.write((v - mean) * rstd * g + b);
                    }
                    ((mean, rstd), out.len().min(x.len()))
                },
            )
        })
        .collect();
    let wrote = rows.iter().map(|r| r.1).sum();
    (rows.into_iter().map(|r| r.0).collect(), wrote)
}

/// The gradients of `x`, `gamma` and `beta` from that of the output: `(dx, dgamma, dbeta)`.
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    stats: &[(f32, f32)],
    grad: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    if width == 0 {
        return (vec![0.0; x.len()], Vec::new(), Vec::new());
    }
    let n = width as f32;
    let mut sums = (vec![0.0f32; width], vec![0.0f32; width]);
    let dx = written(x.len(), |dx| {
        let partials: Vec<(usize, Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(ROWS * width)
            .zip(
                x.par_chunks(ROWS * width)
                    .zip(grad.par_chunks(ROWS * width)),
            )
            .zip(stats.par_chunks(ROWS))
            .map(|((dx, (x, grad)), stats)| {
                widest(
                    #[inline(always)]
                    || {
                        let (mut dgamma, mut dbeta) = (vec![0.0f32; width], vec![0.0f32; width]);
                        let mut wrote = 0;
                        let rows = dx
                            .chunks_exact_mut(width)
                            .zip(x.chunks_exact(width).zip(grad.chunks_exact(width)));
                        for ((dx, (x, grad)), &(mean, rstd)) in rows.zip(stats) {
                            let (mut sum, mut dot) = (0.0f32, 0.0f32);
                            for j in 0..width {
                                let xhat = (x[j] - mean) * rstd;
                                dgamma[j] += grad[j] * xhat;
                                dbeta[j] += grad[j];
                                let d = grad[j] * gamma[j];
                                sum += d;
                                dot += d * xhat;
                            }
                            let (m1, m2) = (sum / n, dot / n);
                            for j in 0..width {
                                let xhat = (x[j] - mean) * rstd;
                                dx[j].write(rstd * (grad[j] * gamma[j] - m1 - xhat * m2));
                            }
                            wrote += width;
                        }
                        (wrote, dgamma, dbeta)
                    },
                )
            })
            .collect();
        // Summed in task order, not in rayon's reduction tree: the tree's shape follows
        // work stealing, and a float sum's order must not change from run to run.
        let (mut wrote, mut dgamma, mut dbeta) = (0, vec![0.0f32; width], vec![0.0f32; width]);
        for (w, g, b) in partials {
            wrote += w;
            dgamma.iter_mut().zip(g).for_each(|(a, v)| *a += v);
            dbeta.iter_mut().zip(b).for_each(|(a, v)| *a += v);
        }
        sums = (dgamma, dbeta);
        wrote
    });
    (dx, sums.0, sums.1)
}

/// The forward on Flex primitives: the output and each row's statistics.
fn forward_flex(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f32,
) -> (FlexTensor, Vec<(f32, f32)>) {
    let x = x.to_contiguous();
    let xs = x.as_slice::<f32>().expect("contiguous f32");
    let mut stats = Vec::new();
    let out = written(xs.len(), |out| {
        let wrote;
        (stats, wrote) = forward(xs, &values(gamma), &values(beta), epsilon, out);
        wrote
    });
    (
        FlexTensor::from_data(TensorData::new(out, x.shape())),
        stats,
    )
}

/// What the backward keeps: the input, gamma, beta's shape and the row statistics.
type State = (FlexTensor, FlexTensor, Vec<(f32, f32)>);

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ids = ops.parents.map(|node| node.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, gamma, stats) = ops.state;
        let x = x.to_contiguous();
        let (dx, dgamma, dbeta) = backward(
            x.as_slice::<f32>().expect("contiguous f32"),
            &values(&gamma),
            &stats,
            grad.as_slice::<f32>().expect("contiguous f32"),
        );
        let values = [
            (dx, x.shape()),
            (dgamma, gamma.shape()),
            (dbeta, gamma.shape()),
        ];
        register_grads(grads, ids, values);
    }
}

/// Layer norm recorded in the autodiff graph with [`LayerNormBackward`].
pub fn layer_norm_autodiff(x: AdTensor, gamma: AdTensor, beta: AdTensor, epsilon: f32) -> AdTensor {
    let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
    match LayerNormBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, stats) = forward_flex(&x.primitive, &gamma.primitive, &beta.primitive, epsilon);
            prep.finish((x.primitive, gamma.primitive, stats), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward_flex(&x.primitive, &gamma.primitive, &beta.primitive, epsilon).0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fused::determinism::{repeats_bit_for_bit, scrambled};

    /// Gamma's and beta's gradients are the same bits on every run, however rayon's workers
    /// steal the row tasks (a reduction tree that follows stealing changed them at 1e-5 and
    /// made a resumed training run drift from the uninterrupted one).
    #[test]
    fn the_parameter_gradients_do_not_depend_on_work_stealing() {
        let (rows, width) = (4096, 48);
        let x: Vec<f32> = (0..rows * width).map(scrambled).collect();
        let grad: Vec<f32> = (0..rows * width).map(|i| scrambled(i * 31 + 5)).collect();
        let gamma: Vec<f32> = (0..width).map(|i| 1.0 + scrambled(i) / 4.0).collect();
        let stats: Vec<(f32, f32)> = x.chunks(width).map(|r| mean_rstd(r, 1e-5)).collect();
        // The input's gradient, gamma's and beta's.
        repeats_bit_for_bit("the layer norm's gradients", || {
            let (dx, dgamma, dbeta) = backward(&x, &gamma, &stats, &grad);
            vec![dx, dgamma, dbeta]
        });
    }
}
