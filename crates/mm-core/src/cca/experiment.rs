//! The deep-versus-linear CCA experiment: two small MLPs trained with the deep CCA loss on
//! [`circle_views`], compared with linear CCA on the same held-out data.

use burn::config::Config;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor};

use super::covariance::to_device;
use super::deep::DeepCcaLossConfig;
use super::synth::{SplitMix64, circle_views};
use super::{CcaError, LinearCcaConfig};
use crate::nn::{Mlp, MlpConfig};

/// Settings of the experiment.
#[derive(Config, Debug)]
pub struct DeepCcaExperimentConfig {
    /// Training pairs.
    #[config(default = 4000)]
    pub n_train: usize,
    /// Held-out pairs the correlations are reported on.
    #[config(default = 4000)]
    pub n_test: usize,
    /// Noise standard deviation of both views.
    #[config(default = 0.05)]
    pub noise: f64,
    /// Hidden width of both MLPs (two hidden layers each).
    #[config(default = 64)]
    pub hidden: usize,
    /// Canonical correlations summed (and output width of each MLP).
    #[config(default = 2)]
    pub k: usize,
    /// Optimizer steps.
    #[config(default = 400)]
    pub steps: usize,
    /// Pairs per step (the covariances are estimated from the batch).
    #[config(default = 500)]
    pub batch: usize,
    /// Adam learning rate.
    #[config(default = 3e-3)]
    pub lr: f64,
    /// Ridge of the deep CCA loss.
    #[config(default = 1e-3)]
    pub ridge: f64,
    /// Seed of the data and the batches.
    #[config(default = 0)]
    pub seed: u64,
}

/// Held-out canonical correlations of both methods.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeepCcaReport {
    /// Linear CCA on the raw views, top-k.
    pub linear: Vec<f64>,
    /// Linear CCA of the trained encoders' outputs, top-k.
    pub deep: Vec<f64>,
    /// Training loss at the first and the last step.
    pub loss_first_last: (f64, f64),
}

/// The two encoders, one per view.
#[derive(Module, Debug)]
pub struct TwoViewEncoders<B: Backend> {
    /// Encoder of X.
    pub fx: Mlp<B>,
    /// Encoder of Y.
    pub fy: Mlp<B>,
}

/// Trains the encoders and reports both methods' held-out correlations.
pub fn run_deep_cca_experiment<B: AutodiffBackend>(
    cfg: &DeepCcaExperimentConfig,
    device: &B::Device,
) -> Result<DeepCcaReport, CcaError> {
    <B as Backend>::seed(device, cfg.seed);
    let (x_train, y_train) = circle_views(cfg.n_train, cfg.noise, cfg.seed);
    let (x_test, y_test) = circle_views(cfg.n_test, cfg.noise, cfg.seed + 1);
    let mlp = MlpConfig::new(2, cfg.hidden, cfg.k);
    let mut model = TwoViewEncoders::<B> {
        fx: mlp.init(device),
        fy: mlp.init(device),
    };
    let loss_fn = DeepCcaLossConfig::new(cfg.k).with_ridge(cfg.ridge).init();
    let mut optim = AdamConfig::new().init();
    let (xt, yt) = (
        to_device::<B>(&x_train, device),
        to_device::<B>(&y_train, device),
    );
    let mut rng = SplitMix64::new(cfg.seed ^ 0x5EED);
    let mut losses = Vec::with_capacity(cfg.steps);
    for _ in 0..cfg.steps {
        let idx: Vec<i64> = (0..cfg.batch)
            .map(|_| (rng.next_u64() % cfg.n_train as u64) as i64)
            .collect();
        let idx = Tensor::<B, 1, Int>::from_data(idx.as_slice(), device);
        let hx = model.fx.forward(xt.clone().select(0, idx.clone())); // [batch, k]
        let hy = model.fy.forward(yt.clone().select(0, idx)); // [batch, k]
        let loss = loss_fn.forward(hx, hy)?;
        losses.push(loss.clone().into_scalar().elem::<f64>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.lr, model, grads);
    }
    let linear = LinearCcaConfig::new(cfg.k)
        .fit(
            to_device::<B>(&x_test, device),
            to_device::<B>(&y_test, device),
        )?
        .correlations;
    let valid = model.valid();
    let inner = device;
    let hx = valid.fx.forward(to_device(&x_test, inner));
    let hy = valid.fy.forward(to_device(&y_test, inner));
    let deep = LinearCcaConfig::new(cfg.k).fit(hx, hy)?.correlations;
    let first = losses.first().copied().unwrap_or(f64::NAN);
    let last = losses.last().copied().unwrap_or(f64::NAN);
    Ok(DeepCcaReport {
        linear,
        deep,
        loss_first_last: (first, last),
    })
}
