//! AdamW with Burn's semantics and state, one fused pass per parameter on Flex.
//!
//! [`AdamWConfig`] is built and used as `burn::optim::AdamWConfig` is (`new`, `with_*`,
//! `init::<B, M>()`) and gives the same updates: the same moments, bias corrections, decoupled
//! weight decay and per-parameter gradient clipping, in the same order of `f32` operations.
//! Its state is Burn's `AdamWState`, so optimizer checkpoints of either load into the other.
//! On Flex each parameter's step is one parallel pass (`nn::fused`; Burn's ops were about 5%
//! of an emoji-CLIP training step, on one core); on every other backend it runs Burn's own
//! `AdamW` after Burn's own clipping.

use burn::config::Config;
use burn::grad_clipping::{GradientClipping, GradientClippingConfig};
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamWState, SimpleOptimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// Settings of [`AdamW`], with Burn's defaults.
#[derive(Config, Debug)]
pub struct AdamWConfig {
    /// First-moment decay.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Second-moment decay.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Added to the second moment's square root.
    #[config(default = 1e-5)]
    pub epsilon: f32,
    /// Decoupled weight decay (the parameter shrinks by `lr * weight_decay` each step).
    #[config(default = 1e-4)]
    pub weight_decay: f32,
    /// Each parameter's gradient clipped by value or by its own norm before the step.
    pub grad_clipping: Option<GradientClippingConfig>,
}

impl AdamWConfig {
    /// The optimizer.
    pub fn build(&self) -> AdamW {
        AdamW {
            burn: burn::optim::AdamWConfig::new()
                .with_beta_1(self.beta_1)
                .with_beta_2(self.beta_2)
                .with_epsilon(self.epsilon)
                .with_weight_decay(self.weight_decay)
                .build(),
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            clipping: self
                .grad_clipping
                .as_ref()
                .map(GradientClippingConfig::init),
        }
    }

    /// The optimizer for the parameters of module `M` on the autodiff backend `B`.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(&self) -> OptimizerAdaptor<AdamW, M, B> {
        // Clipping happens inside `AdamW::step`, so the adaptor gets none.
        OptimizerAdaptor::from(self.build())
    }
}

/// AdamW (Loshchilov and Hutter), as Burn's with gradient clipping folded into the step.
#[derive(Clone)]
// Without Flex only `burn` and `clipping` are read.
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
pub struct AdamW {
    /// Burn's own, for backends without the fused pass.
    burn: burn::optim::AdamW,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    clipping: Option<GradientClipping>,
}

impl<B: Backend> SimpleOptimizer<B> for AdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        #[cfg(feature = "flex")]
        if crate::nn::fused::adamw::applies(&tensor) {
            return self.fused(lr, tensor, grad, state);
        }
        let grad = match &self.clipping {
            Some(c) => c.clip_gradient(grad),
            None => grad,
        };
        self.burn.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <burn::optim::AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(feature = "flex")]
impl AdamW {
    /// The step as one pass on Flex.
    fn fused<B: Backend, const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamWState<B, D>>,
    ) -> (Tensor<B, D>, Option<AdamWState<B, D>>) {
        use crate::nn::fused::adamw::{AdamWStep, Clip, step};
        use burn::optim::AdaptiveMomentumState;
        let (time, moments) = match state {
            Some(s) => (
                s.momentum.time + 1,
                Some((s.momentum.moment_1, s.momentum.moment_2)),
            ),
            None => (1, None),
        };
        let constants = AdamWStep {
            lr: lr as f32,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            // As Burn: the decay rate in f64, the factor rounded to the tensor's f32.
            decay: (1.0 - lr * f64::from(self.weight_decay)) as f32,
            time: i32::try_from(time).unwrap_or(i32::MAX),
            clip: self.clipping.as_ref().map(|c| match c {
                GradientClipping::Value(t) => Clip::Value(*t),
                GradientClipping::Norm(t) => Clip::Norm(*t),
            }),
        };
        let [param, moment_1, moment_2] = step(tensor, grad, moments, &constants);
        let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
        (param, Some(AdamWState::new(momentum)))
    }
}
