//! One AdamW step of one parameter on Flex, as a single parallel pass.
//!
//! Burn's `AdamW` updates a parameter with about fifteen element-wise tensor ops (the two
//! moments, their bias corrections, the square root, the decay), plus four more for clipping
//! the gradient by its norm; on Flex each op is a pass over the whole tensor on the calling
//! thread, with a new buffer each time. For the emoji CLIP, whose token embedding alone has
//! 6.3 million weights, that was about 5% of a training step's samples, all on one core. Here the
//! same arithmetic, in the same order, runs in one pass over both cores and updates the
//! parameter and its moments in place (when no one else holds them).

use std::any::TypeId;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use rayon::prelude::*;

use super::flex::{cast, dense, elements};
use super::wide::widest;

/// Elements per rayon task: small parameters (biases, norms) run as one task.
const CHUNK: usize = 1 << 14;

/// How the gradient is clipped before the step, as Burn's `GradientClipping`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    /// Each element into `[-t, t]`.
    Value(f32),
    /// The whole gradient scaled by `min(1, t / (norm + f32::MIN_POSITIVE))`.
    Norm(f32),
}

/// The constants of one step, in the `f32` values Burn's ops see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Added to the second moment's square root.
    pub epsilon: f32,
    /// The parameter's factor before the update: `1 - lr * weight_decay`.
    pub decay: f32,
    /// The step number, from 1: the bias corrections are `1 - beta^time`.
    pub time: i32,
    /// Gradient clipping, if any.
    pub clip: Option<Clip>,
}

/// True when `B` is Flex and `x` holds `f32`: [`step`] applies.
pub fn applies<B: Backend, const D: usize>(x: &Tensor<B, D>) -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>() && x.dtype() == DType::F32
}

/// The updated parameter and moments `(param, moment_1, moment_2)`; `moments` is `None` on
/// the first step.
///
/// # Panics
/// Unless [`applies`] holds for the parameter, or when the shapes differ.
pub fn step<B: Backend, const D: usize>(
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moments: Option<(Tensor<B, D>, Tensor<B, D>)>,
    s: &AdamWStep,
) -> [Tensor<B, D>; 3] {
    let flex =
        |t: Tensor<B, D>| -> FlexTensor { cast(t.into_primitive().tensor()).expect("B is Flex") };
    let back =
        |t: FlexTensor| Tensor::from_primitive(TensorPrimitive::Float(cast(t).expect("B is Flex")));
    let shape = param.shape();
    assert_eq!(shape, grad.shape(), "a gradient of another shape");
    let grad = dense(&flex(grad));
    let g = elements(&grad);
    let mut p = owned(flex(param));
    let (mut m, mut v) = match moments {
        Some((m, v)) => (owned(flex(m)), owned(flex(v))),
        None => {
            let zeros = || FlexTensor::zeros(shape.clone(), DType::F32);
            (zeros(), zeros())
        }
    };
    let first = s.time == 1;
    let coef = match s.clip {
        Some(Clip::Norm(t)) => (t / (norm(g) + f32::MIN_POSITIVE)).min(1.0),
        _ => 1.0,
    };
    let limit = match s.clip {
        Some(Clip::Value(t)) => t,
        _ => f32::INFINITY,
    };
    update(
        p.storage_mut::<f32>(),
        m.storage_mut::<f32>(),
        v.storage_mut::<f32>(),
        g,
        Constants::new(s, coef, limit, first),
    );
    [back(p), back(m), back(v)]
}

/// `x` with its own contiguous storage of exactly its elements (a copy only when it is a
/// view), so `storage_mut` covers the tensor.
fn owned(x: FlexTensor) -> FlexTensor {
    let full = x
        .as_slice::<f32>()
        .is_some_and(|s| s.len() == x.storage::<f32>().len());
    if full { x } else { x.to_contiguous() }
}

/// The L2 norm of `g`, summed in `f64` per task and then in task order (rayon's own
/// reduction tree follows work stealing, and the norm must not change from run to run).
fn norm(g: &[f32]) -> f32 {
    let partials: Vec<f64> = g
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
        .collect();
    partials.iter().sum::<f64>().sqrt() as f32
}

/// The per-element constants of [`update`].
#[derive(Clone, Copy)]
struct Constants {
    s: AdamWStep,
    /// Norm clipping's factor (1 without).
    coef: f32,
    /// Value clipping's bound (infinite without).
    limit: f32,
    /// Moments start from the gradient alone, as Burn's first step does.
    first: bool,
    bias_1: f32,
    bias_2: f32,
}

impl Constants {
    fn new(s: &AdamWStep, coef: f32, limit: f32, first: bool) -> Self {
        Constants {
            s: *s,
            coef,
            limit,
            first,
            bias_1: 1.0 - s.beta_1.powi(s.time),
            bias_2: 1.0 - s.beta_2.powi(s.time),
        }
    }
}

/// The step over every element, in Burn's order of operations.
fn update(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], c: Constants) {
    assert!(p.len() == g.len() && m.len() == g.len() && v.len() == g.len());
    let (f1, f2) = (1.0 - c.s.beta_1, 1.0 - c.s.beta_2);
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| {
            widest(
                #[inline(always)]
                || {
                    for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
                        let g = (g * c.coef).clamp(-c.limit, c.limit);
                        let (gm, gv) = (g * f1, g * g * f2);
                        *m = if c.first { gm } else { *m * c.s.beta_1 + gm };
                        *v = if c.first { gv } else { *v * c.s.beta_2 + gv };
                        let delta = (*m / c.bias_1) / ((*v / c.bias_2).sqrt() + c.s.epsilon);
                        *p = *p * c.s.decay - delta * c.s.lr;
                    }
                },
            )
        });
}
