//! The deep-versus-linear CCA experiment: two small MLPs trained with the deep CCA loss on
//! [`circle_views`] through the house loop ([`crate::train::fit`]), compared with linear CCA
//! on the same held-out data.
//!
//! Each step's pairs are drawn from an RNG seeded by `(seed, step)`. On several devices each
//! device estimates the covariances from its own share of the batch.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use burn_train::{InferenceStep, TrainOutput, TrainStep};

use super::covariance::to_device;
use super::deep::{DeepCcaLoss, DeepCcaLossConfig};
use super::{CcaError, LinearCcaConfig};
use crate::nn::{Mlp, MlpConfig};
use crate::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, TrainError, append_eval, fit, load_weights,
    read_losses, read_model_config, save_model_dir,
};
use mm_data::matrix::HostMatrix;
use mm_data::rng::SplitMix64;
use mm_data::synth::cca::circle_views;

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
    /// Steps between checkpoints (0: only at the end).
    #[config(default = 100)]
    pub checkpoint_every: usize,
}

/// Held-out canonical correlations of both methods.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeepCcaReport {
    /// Linear CCA on the raw views, top-k.
    pub linear: Vec<f64>,
    /// Linear CCA of the trained encoders' outputs, top-k.
    pub deep: Vec<f64>,
    /// Training loss at the first and the last step (from `metrics.jsonl`), when the run's
    /// log is there.
    pub loss_first_last: Option<(f64, f64)>,
}

/// The two encoders, one per view.
#[derive(Module, Debug)]
pub struct TwoViewEncoders<B: Backend> {
    /// Encoder of X.
    pub fx: Mlp<B>,
    /// Encoder of Y.
    pub fy: Mlp<B>,
}

/// One device's share of a step's pairs.
#[derive(Debug, Clone)]
pub struct CcaBatch<B: Backend> {
    /// View X rows, `[rows, 2]`.
    pub x: Tensor<B, 2>,
    /// View Y rows, `[rows, 2]`.
    pub y: Tensor<B, 2>,
    /// The loss to train with.
    pub loss: DeepCcaLoss,
    /// The step, this device's share of it, and the step's size.
    pub at: StepInfo,
}

/// Draws any step's pairs from the training views.
pub struct CcaBatches {
    x: HostMatrix,
    y: HostMatrix,
    cfg: DeepCcaExperimentConfig,
}

fn gather(m: &HostMatrix, rows: &[usize]) -> HostMatrix {
    HostMatrix {
        rows: rows.len(),
        cols: m.cols,
        data: rows
            .iter()
            .flat_map(|&r| m.data[r * m.cols..(r + 1) * m.cols].iter().copied())
            .collect(),
    }
}

impl<B: Backend> BatchSource<B> for CcaBatches {
    type Batch = CcaBatch<B>;

    fn batch_size(&self) -> usize {
        self.cfg.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> CcaBatch<B> {
        let mut rng = SplitMix64::stream(self.cfg.seed ^ 0x5EED, at.step as u64);
        let idx: Vec<usize> = (0..self.cfg.batch)
            .map(|_| (rng.next_u64() % self.x.rows as u64) as usize)
            .collect();
        let mine = &idx[at.share.rows(self.cfg.batch)];
        CcaBatch {
            x: to_device(&gather(&self.x, mine), device),
            y: to_device(&gather(&self.y, mine), device),
            loss: DeepCcaLossConfig::new(self.cfg.k)
                .with_ridge(self.cfg.ridge)
                .init(),
            at,
        }
    }
}

impl<B: Backend> TwoViewEncoders<B> {
    fn output(&self, batch: &CcaBatch<B>) -> (Option<Tensor<B, 1>>, StepOutput) {
        let hx = self.fx.forward(batch.x.clone()); // [rows, k]
        let hy = self.fy.forward(batch.y.clone()); // [rows, k]
        let loss = batch.loss.forward(hx, hy).ok();
        let value = loss
            .as_ref()
            .map_or(f64::NAN, |l| l.clone().into_scalar().elem::<f64>());
        let out = batch.at.output(value);
        (loss, out)
    }
}

impl<B: AutodiffBackend> TrainStep for TwoViewEncoders<B> {
    type Input = CcaBatch<B>;
    type Output = StepOutput;

    /// A batch whose canonical pairs cannot be solved (non-finite activations after a
    /// divergence) is logged with a NaN loss and changes nothing; the experiment then reports
    /// the step as an error.
    fn step(&self, batch: CcaBatch<B>) -> TrainOutput<StepOutput> {
        match self.output(&batch) {
            (Some(loss), out) => TrainOutput::new(self, (loss * batch.at.weight()).backward(), out),
            (None, out) => TrainOutput {
                grads: GradientsParams::new(),
                item: out,
            },
        }
    }
}

impl<B: Backend> InferenceStep for TwoViewEncoders<B> {
    type Input = CcaBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: CcaBatch<B>) -> StepOutput {
        self.output(&batch).1
    }
}

/// Trains the encoders in `run`'s folder and saves them in its `final/` (with the config);
/// an error if a step's loss was not finite.
pub fn train_deep_cca<B: AutodiffBackend>(
    cfg: &DeepCcaExperimentConfig,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<TwoViewEncoders<B::InnerBackend>, CcaError> {
    let device = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    <B as Backend>::seed(device, cfg.seed);
    let (x_train, y_train) = circle_views(cfg.n_train, cfg.noise, cfg.seed);
    let source = CcaBatches {
        x: x_train,
        y: y_train,
        cfg: cfg.clone(),
    };
    let spec = run.spec(cfg.steps, cfg.checkpoint_every, 2);
    let json = serde_json::to_value(cfg).expect("configs serialize");
    let optim = AdamConfig::new().init::<B, TwoViewEncoders<B>>();
    let valid = fit(
        &spec,
        &json,
        encoders::<B>(cfg, device),
        optim,
        cfg.lr,
        source,
        devices,
    )?;
    if let Some(step) = first_non_finite(&spec.metrics_path())? {
        return Err(CcaError::Diverged { step });
    }
    save_model_dir(&run.run_dir.join("final"), &json, &valid)?;
    Ok(valid)
}

/// Freshly initialized encoders of `cfg`'s shape.
fn encoders<B: Backend>(cfg: &DeepCcaExperimentConfig, device: &B::Device) -> TwoViewEncoders<B> {
    let mlp = MlpConfig::new(2, cfg.hidden, cfg.k);
    TwoViewEncoders {
        fx: mlp.init(device),
        fy: mlp.init(device),
    }
}

/// The step of the first non-finite loss in a run's `metrics.jsonl`, if any.
fn first_non_finite(metrics: &Path) -> Result<Option<usize>, CcaError> {
    let losses = read_losses(metrics).map_err(|source| TrainError::Io {
        path: metrics.into(),
        source,
    })?;
    Ok(losses
        .iter()
        .find(|(_, l)| !l.is_finite())
        .map(|&(step, _)| step))
}

/// Loads encoders saved by [`train_deep_cca`] (a run's `final/`) with their config.
pub fn load_deep_cca<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(TwoViewEncoders<B>, DeepCcaExperimentConfig), CcaError> {
    let json = read_model_config(dir)?;
    let cfg: DeepCcaExperimentConfig =
        serde_json::from_value(json).map_err(|e| TrainError::BadCheckpoint {
            path: dir.join("config.json"),
            reason: format!("not a deep CCA config: {e}"),
        })?;
    let model = load_weights(dir, encoders::<B>(&cfg, device), device)?;
    Ok((model, cfg))
}

/// Linear CCA on `cfg`'s held-out views beside linear CCA of the encoders' outputs; the
/// training loss from `metrics` (a run's `metrics.jsonl`) when it is there, and the figures
/// appended to it.
pub fn evaluate_deep_cca<B: Backend>(
    cfg: &DeepCcaExperimentConfig,
    model: &TwoViewEncoders<B>,
    metrics: &Path,
    device: &B::Device,
) -> Result<DeepCcaReport, CcaError> {
    let (x_test, y_test) = circle_views(cfg.n_test, cfg.noise, cfg.seed + 1);
    let linear = LinearCcaConfig::new(cfg.k)
        .fit(
            to_device::<B>(&x_test, device),
            to_device::<B>(&y_test, device),
        )?
        .correlations;
    let hx = model.fx.forward(to_device(&x_test, device));
    let hy = model.fy.forward(to_device(&y_test, device));
    let deep = LinearCcaConfig::new(cfg.k).fit(hx, hy)?.correlations;
    let losses = read_losses(metrics).unwrap_or_default();
    let loss_first_last = losses.first().zip(losses.last()).map(|(f, l)| (f.1, l.1));
    let report = DeepCcaReport {
        linear,
        deep,
        loss_first_last,
    };
    if metrics.is_file() {
        let figures = serde_json::json!({ "linear": report.linear, "deep": report.deep });
        append_eval(metrics, &figures).map_err(|source| TrainError::Io {
            path: metrics.into(),
            source,
        })?;
    }
    Ok(report)
}

/// Trains the encoders in `run`'s folder ([`train_deep_cca`]) and reports both methods'
/// held-out correlations ([`evaluate_deep_cca`]).
pub fn run_deep_cca_experiment<B: AutodiffBackend>(
    cfg: &DeepCcaExperimentConfig,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<DeepCcaReport, CcaError> {
    let valid = train_deep_cca::<B>(cfg, run, devices)?;
    let device = devices.first().expect("train_deep_cca checked");
    let metrics = run.spec(cfg.steps, cfg.checkpoint_every, 2).metrics_path();
    evaluate_deep_cca(cfg, &valid, &metrics, device)
}
