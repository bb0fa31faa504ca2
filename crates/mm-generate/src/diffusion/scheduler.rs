//! The samplers: DDPM, DDIM and Euler steps from noise to sample, each matching its diffusers
//! class (`scheduling_ddpm.py`, `scheduling_ddim.py`, `scheduling_euler_discrete.py`) step for
//! step, scalars in f32 as diffusers keeps them.
//!
//! Steps are addressed by their index in [`Scheduler::timesteps`] (what a sampling loop has at
//! hand); noise that a step adds is handed in, so the caller owns the random numbers and a run
//! can be replayed against another tool.

use std::path::Path;

use burn::tensor::{Tensor, backend::Backend};

use super::SchedulerError;
use super::config::{
    PredictionType, SchedulerConfig, SchedulerKind, TimestepSpacing, VarianceType,
};
use super::schedule::{NoiseSchedule, euler_sigmas, integer_timesteps};

/// One step's results.
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend, const D: usize> {
    /// The sample at the next (less noisy) timestep.
    pub prev_sample: Tensor<B, D>,
    /// The model's estimate of the clean sample.
    pub pred_original_sample: Tensor<B, D>,
}

/// A scheduler set to a number of inference steps.
#[derive(Debug, Clone)]
pub struct Scheduler {
    config: SchedulerConfig,
    schedule: NoiseSchedule,
    /// The model's timestep input per step.
    timesteps: Vec<f32>,
    /// DDPM / DDIM: the integer training timestep per step.
    train_steps: Vec<i64>,
    /// Euler: sigma per step, plus the final one.
    sigmas: Vec<f32>,
    /// DDIM's noise weight (0: deterministic).
    eta: f32,
}

impl Scheduler {
    /// `config` set to `steps` inference steps (diffusers `set_timesteps`).
    pub fn new(config: SchedulerConfig, steps: usize) -> Result<Self, SchedulerError> {
        // A config built by hand skips the file reader's check.
        config
            .check_thresholding()
            .map_err(|reason| SchedulerError::Config {
                path: "scheduler config".into(),
                reason,
            })?;
        if steps == 0 || steps > config.num_train_timesteps {
            return Err(SchedulerError::Steps {
                steps,
                train: config.num_train_timesteps,
            });
        }
        let schedule = NoiseSchedule::new(&config);
        let (timesteps, train_steps, sigmas) = match config.class_name {
            SchedulerKind::Ddpm | SchedulerKind::Ddim => {
                let ints = integer_timesteps(&config, steps);
                if let Some(&bad) = ints
                    .iter()
                    .find(|&&t| t < 0 || t as usize >= config.num_train_timesteps)
                {
                    return Err(SchedulerError::Steps {
                        steps: bad.max(0) as usize,
                        train: config.num_train_timesteps,
                    });
                }
                (ints.iter().map(|&t| t as f32).collect(), ints, Vec::new())
            }
            SchedulerKind::Euler => {
                let (t, s) = euler_sigmas(&config, &schedule, steps);
                (t, Vec::new(), s)
            }
        };
        Ok(Self {
            config,
            schedule,
            timesteps,
            train_steps,
            sigmas,
            eta: 0.0,
        })
    }

    /// Reads `scheduler_config.json` (`kind` overrides its class) and sets `steps`.
    pub fn from_file(
        path: &Path,
        kind: Option<SchedulerKind>,
        steps: usize,
    ) -> Result<Self, SchedulerError> {
        Self::new(SchedulerConfig::from_file(path, kind)?, steps)
    }

    /// DDIM's eta: 0 is deterministic, 1 is DDPM-like (then every step but the last takes
    /// noise). Ignored by the other samplers.
    pub fn with_eta(mut self, eta: f32) -> Self {
        self.eta = eta;
        self
    }

    /// The settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The training tables.
    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    /// The timestep the model sees at each step, highest first.
    pub fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    /// What the starting noise is multiplied by.
    pub fn init_noise_sigma(&self) -> f32 {
        match self.config.class_name {
            SchedulerKind::Euler => {
                let max = self.sigmas.iter().copied().fold(f32::MIN, f32::max);
                match self.config.timestep_spacing {
                    TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
                    TimestepSpacing::Leading => (max * max + 1.0).sqrt(),
                }
            }
            _ => 1.0,
        }
    }

    /// Whether step `index` adds noise (and so needs the `noise` argument of [`Self::step`]).
    pub fn needs_noise(&self, index: usize) -> bool {
        match self.config.class_name {
            SchedulerKind::Ddpm => self.train_steps[index] > 0,
            SchedulerKind::Ddim => self.eta > 0.0,
            SchedulerKind::Euler => false,
        }
    }

    /// The model's input at step `index` (Euler divides by `sqrt(sigma^2 + 1)`).
    pub fn scale_model_input<B: Backend, const D: usize>(
        &self,
        sample: Tensor<B, D>,
        index: usize,
    ) -> Tensor<B, D> {
        match self.config.class_name {
            SchedulerKind::Euler => {
                let sigma = self.sigmas[index];
                sample.div_scalar((sigma * sigma + 1.0).sqrt())
            }
            _ => sample,
        }
    }

    /// Step `index` from `sample` with the model's `model_output`; `noise` (a standard normal
    /// draw shaped like the sample) is required where [`Self::needs_noise`] says so.
    ///
    /// # Shapes
    /// - `model_output`, `sample`, `noise`: the same shape, e.g. `[batch, channels, h, w]`.
    pub fn step<B: Backend, const D: usize>(
        &self,
        index: usize,
        model_output: Tensor<B, D>,
        sample: Tensor<B, D>,
        noise: Option<Tensor<B, D>>,
    ) -> Result<StepOutput<B, D>, SchedulerError> {
        if index >= self.timesteps.len() {
            return Err(SchedulerError::StepIndex {
                index,
                steps: self.timesteps.len(),
            });
        }
        if model_output.dims() != sample.dims() {
            return Err(SchedulerError::Shape(format!(
                "model output {:?} vs sample {:?}",
                model_output.dims(),
                sample.dims()
            )));
        }
        let noise = match (self.needs_noise(index), noise) {
            (true, None) => return Err(SchedulerError::NoiseRequired { index }),
            (true, Some(n)) if n.dims() != sample.dims() => {
                return Err(SchedulerError::Shape(format!(
                    "noise {:?} vs sample {:?}",
                    n.dims(),
                    sample.dims()
                )));
            }
            (_, n) => n,
        };
        Ok(match self.config.class_name {
            SchedulerKind::Ddim => self.ddim_step(index, model_output, sample, noise),
            SchedulerKind::Ddpm => self.ddpm_step(index, model_output, sample, noise),
            SchedulerKind::Euler => self.euler_step(index, model_output, sample),
        })
    }

    /// The clean-sample estimate and (for DDIM) the noise estimate from the model's output.
    fn predict<B: Backend, const D: usize>(
        &self,
        alpha_prod_t: f32,
        model_output: Tensor<B, D>,
        sample: Tensor<B, D>,
    ) -> (Tensor<B, D>, Tensor<B, D>) {
        let beta_prod_t = 1.0 - alpha_prod_t;
        let (sa, sb) = (alpha_prod_t.sqrt(), beta_prod_t.sqrt());
        let (x0, eps) = match self.config.prediction_type {
            PredictionType::Epsilon => (
                (sample - model_output.clone().mul_scalar(sb)).div_scalar(sa),
                model_output,
            ),
            PredictionType::Sample => (
                model_output.clone(),
                (sample - model_output.mul_scalar(sa)).div_scalar(sb),
            ),
            PredictionType::VPrediction => (
                sample.clone().mul_scalar(sa) - model_output.clone().mul_scalar(sb),
                model_output.mul_scalar(sa) + sample.mul_scalar(sb),
            ),
        };
        let x0 = if self.config.thresholding {
            dynamic_threshold(
                x0,
                self.config.dynamic_thresholding_ratio as f32,
                self.config.sample_max_value as f32,
            )
        } else if self.config.clip_sample {
            let r = self.config.clip_sample_range as f32;
            x0.clamp(-r, r)
        } else {
            x0
        };
        (x0, eps)
    }

    // diffusers `scheduling_ddim.py`, `DDIMScheduler.step` (use_clipped_model_output False).
    fn ddim_step<B: Backend, const D: usize>(
        &self,
        index: usize,
        model_output: Tensor<B, D>,
        sample: Tensor<B, D>,
        noise: Option<Tensor<B, D>>,
    ) -> StepOutput<B, D> {
        let t = self.train_steps[index];
        let prev_t = t - (self.config.num_train_timesteps / self.timesteps.len()) as i64;
        let acp = &self.schedule.alphas_cumprod;
        let alpha_prod_t = acp[t as usize];
        let alpha_prod_t_prev = if prev_t >= 0 {
            acp[prev_t as usize]
        } else if self.config.set_alpha_to_one {
            1.0
        } else {
            acp[0]
        };
        let (x0, eps) = self.predict(alpha_prod_t, model_output, sample);
        let variance = ((1.0 - alpha_prod_t_prev) / (1.0 - alpha_prod_t))
            * (1.0 - alpha_prod_t / alpha_prod_t_prev);
        let std_dev_t = self.eta * variance.sqrt();
        let direction = eps.mul_scalar((1.0 - alpha_prod_t_prev - std_dev_t * std_dev_t).sqrt());
        let mut prev = x0.clone().mul_scalar(alpha_prod_t_prev.sqrt()) + direction;
        if let (true, Some(n)) = (self.eta > 0.0, noise) {
            prev = prev + n.mul_scalar(std_dev_t);
        }
        StepOutput {
            prev_sample: prev,
            pred_original_sample: x0,
        }
    }

    // diffusers `scheduling_ddpm.py`, `DDPMScheduler.step` and `_get_variance`.
    fn ddpm_step<B: Backend, const D: usize>(
        &self,
        index: usize,
        model_output: Tensor<B, D>,
        sample: Tensor<B, D>,
        noise: Option<Tensor<B, D>>,
    ) -> StepOutput<B, D> {
        let t = self.train_steps[index];
        let prev_t = self.train_steps.get(index + 1).copied().unwrap_or(-1);
        let acp = &self.schedule.alphas_cumprod;
        let alpha_prod_t = acp[t as usize];
        let alpha_prod_t_prev = if prev_t >= 0 {
            acp[prev_t as usize]
        } else {
            1.0
        };
        let beta_prod_t = 1.0 - alpha_prod_t;
        let beta_prod_t_prev = 1.0 - alpha_prod_t_prev;
        let current_alpha_t = alpha_prod_t / alpha_prod_t_prev;
        let current_beta_t = 1.0 - current_alpha_t;
        let (x0, _) = self.predict(alpha_prod_t, model_output, sample.clone());
        let x0_coeff = (alpha_prod_t_prev.sqrt() * current_beta_t) / beta_prod_t;
        let sample_coeff = current_alpha_t.sqrt() * beta_prod_t_prev / beta_prod_t;
        let mut prev = x0.clone().mul_scalar(x0_coeff) + sample.mul_scalar(sample_coeff);
        if let (true, Some(n)) = (t > 0, noise) {
            let variance =
                ((1.0 - alpha_prod_t_prev) / (1.0 - alpha_prod_t) * current_beta_t).max(1e-20);
            let std = match self.config.variance_type {
                VarianceType::FixedSmall => variance.sqrt(),
                VarianceType::FixedSmallLog => (0.5 * variance.ln()).exp(),
                VarianceType::FixedLarge => current_beta_t.sqrt(),
            };
            prev = prev + n.mul_scalar(std);
        }
        StepOutput {
            prev_sample: prev,
            pred_original_sample: x0,
        }
    }

    // diffusers `scheduling_euler_discrete.py`, `EulerDiscreteScheduler.step` (s_churn 0).
    fn euler_step<B: Backend, const D: usize>(
        &self,
        index: usize,
        model_output: Tensor<B, D>,
        sample: Tensor<B, D>,
    ) -> StepOutput<B, D> {
        let sigma = self.sigmas[index];
        let x0 = match self.config.prediction_type {
            PredictionType::Sample => model_output,
            PredictionType::Epsilon => sample.clone() - model_output.mul_scalar(sigma),
            PredictionType::VPrediction => {
                let s2 = sigma * sigma + 1.0;
                model_output.mul_scalar(-sigma / s2.sqrt()) + sample.clone().div_scalar(s2)
            }
        };
        let derivative = (sample.clone() - x0.clone()).div_scalar(sigma);
        let dt = self.sigmas[index + 1] - sigma;
        StepOutput {
            prev_sample: sample + derivative.mul_scalar(dt),
            pred_original_sample: x0,
        }
    }
}

/// Imagen's dynamic thresholding as diffusers' `_threshold_sample` computes it: per sample
/// (first axis), `s` is the `ratio` quantile of the absolute values (linear interpolation
/// between order statistics, as `torch.quantile`), held to `[1, max]`; the sample is clamped
/// to `[-s, s]` and divided by `s`.
pub fn dynamic_threshold<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    ratio: f32,
    max: f32,
) -> Tensor<B, D> {
    let dims = x.dims();
    let rows = dims[0];
    let n = dims.iter().product::<usize>() / rows.max(1);
    if rows == 0 || n == 0 {
        return x;
    }
    let flat = x.reshape([rows, n]);
    let sorted = flat.clone().abs().sort(1);
    let rank = ratio * (n - 1) as f32;
    let below = (rank.floor() as usize).min(n - 1);
    let above = (rank.ceil() as usize).min(n - 1);
    let weight = rank - below as f32;
    let low = sorted.clone().slice([0..rows, below..below + 1]);
    let high = sorted.slice([0..rows, above..above + 1]);
    // torch's `lerp`, which interpolates from the nearer end.
    let s = if weight < 0.5 {
        low.clone() + (high - low).mul_scalar(weight)
    } else {
        high.clone() - (high - low).mul_scalar(1.0 - weight)
    };
    let s = s.clamp_min(1.0).clamp_max(max).expand([rows, n]);
    flat.max_pair(s.clone().neg())
        .min_pair(s.clone())
        .div(s)
        .reshape(dims)
}
