//! Exponential moving averages of weights (EMA), as diffusion and many vision models keep for
//! sampling: after every optimizer step, `average = d * average + (1 - d) * weights`.
//!
//! The averaged copy lives inside the training module (so burn-train checkpoints and resumes
//! it with everything else); [`WithEma`] wraps any optimizer and moves the average after each
//! of its steps, with diffusers' `EMAModel` warm-up: at update `n` the decay is
//! `min(decay, (1 + n) / (10 + n))`, so early averages are not dominated by the random start.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// A training module that holds an averaged copy of (part of) its weights.
pub trait EmaModule<B: AutodiffBackend>: AutodiffModule<B> {
    /// Moves the averaged weights towards the trained ones by `1 - decay`.
    fn update_ema(self, decay: f64) -> Self;
}

/// Every float parameter of a module, flattened and detached, in visiting order.
struct Collect<B: Backend> {
    values: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val().detach();
        let n = value.shape().num_elements();
        self.values.push(value.reshape([n]));
    }
}

/// Replaces each float parameter by its blend with the collected value of the same position.
struct Blend<B: Backend> {
    values: std::vec::IntoIter<Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let current = self
            .values
            .next()
            .expect("the average and the weights have the same parameters");
        let decay = self.decay;
        param.map(|average| {
            let dims = average.dims();
            let current = current.reshape(dims);
            (average.detach().mul_scalar(decay) + current.mul_scalar(1.0 - decay))
                .set_require_grad(false)
        })
    }
}

/// `average` moved towards `weights`: `decay * average + (1 - decay) * weights`, parameter
/// by parameter (both modules must have the same structure). The result tracks no gradient
/// and keeps `average`'s parameter ids.
pub fn lerp_weights<B: Backend, M: Module<B>>(average: M, weights: &M, decay: f64) -> M {
    let mut collect = Collect { values: Vec::new() };
    weights.visit(&mut collect);
    let expected = collect.values.len();
    let mut blend = Blend {
        values: collect.values.into_iter(),
        decay,
    };
    let out = average.map(&mut blend);
    debug_assert_eq!(blend.values.len(), 0, "{expected} weights, fewer averages");
    out
}

/// The decay of update `update` (counting from 1): diffusers' `EMAModel` warm-up
/// `(1 + n) / (10 + n)`, capped at `decay`, with `n = update - 1`.
pub fn ema_decay(decay: f64, update: usize) -> f64 {
    let n = update.saturating_sub(1) as f64;
    if update <= 1 {
        return 0.0;
    }
    ((1.0 + n) / (10.0 + n)).min(decay)
}

/// An optimizer that updates the module's EMA after every step of `inner`.
#[derive(Clone)]
pub struct WithEma<O> {
    inner: O,
    decay: f64,
    updates: usize,
}

impl<O> WithEma<O> {
    /// Wraps `inner`; `decay` is the long-run decay (0.999 keeps about the last 1,000 steps).
    pub fn new(inner: O, decay: f64) -> Self {
        Self {
            inner,
            decay,
            updates: 0,
        }
    }

    fn update<B: AutodiffBackend, M: EmaModule<B>>(&mut self, module: M) -> M {
        self.updates += 1;
        module.update_ema(ema_decay(self.decay, self.updates))
    }
}

impl<B, M, O> Optimizer<M, B> for WithEma<O>
where
    B: AutodiffBackend,
    M: EmaModule<B>,
    O: Optimizer<M, B>,
{
    type Record = (O::Record, usize);

    fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let module = self.inner.step(lr, module, grads);
        self.update(module)
    }

    fn step_multi(&mut self, lr: f64, module: M, grads: MultiGradientsParams) -> M {
        let module = self.inner.step_multi(lr, module, grads);
        self.update(module)
    }

    fn to_record(&self) -> Self::Record {
        (self.inner.to_record(), self.updates)
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            inner: self.inner.load_record(record.0),
            decay: self.decay,
            updates: record.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    type B = burn::backend::Autodiff<burn::backend::NdArray>;

    #[test]
    fn lerp_blends_every_parameter_and_keeps_ids() {
        let device = Default::default();
        let a: Linear<B> = LinearConfig::new(3, 2).init(&device);
        let b: Linear<B> = LinearConfig::new(3, 2).init(&device);
        // `a` and its clone must agree (see `crate::nn::materialize`).
        crate::nn::materialize(&a);
        let id = a.weight.id;
        let out = lerp_weights(a.clone(), &b, 0.75);
        assert_eq!(out.weight.id, id);
        let expected = a.weight.val() * 0.75 + b.weight.val() * 0.25;
        out.weight
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        let bias = a.bias.unwrap().val() * 0.75 + b.bias.unwrap().val() * 0.25;
        out.bias
            .unwrap()
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&bias.into_data(), Default::default());
        assert!(!out.weight.val().is_require_grad());
    }

    #[test]
    fn decay_warms_up_then_caps() {
        assert_eq!(ema_decay(0.999, 1), 0.0);
        assert!((ema_decay(0.999, 2) - 2.0 / 11.0).abs() < 1e-12);
        assert!((ema_decay(0.9, 1000) - 0.9).abs() < 1e-12);
    }
}
