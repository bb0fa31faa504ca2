//! The noise schedule: betas, cumulative alpha products, inference timesteps (and Euler's
//! sigmas) and the forward (noising) process, computed in f32 in the order diffusers computes
//! them so that tables and steps agree to the last bits.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::config::{BetaSchedule, FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing};

/// The training-time tables of a schedule.
#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    /// `beta_t` for every training timestep.
    pub betas: Vec<f32>,
    /// `prod_{s <= t} (1 - beta_s)` for every training timestep.
    pub alphas_cumprod: Vec<f32>,
}

impl NoiseSchedule {
    /// The tables of `config` (every scheduler class shares them).
    pub fn new(config: &SchedulerConfig) -> Self {
        let n = config.num_train_timesteps;
        // diffusers `scheduling_ddim.py`, `DDIMScheduler.__init__` (the other classes alike).
        let betas: Vec<f32> = match (&config.trained_betas, config.beta_schedule) {
            (Some(b), _) => b.iter().map(|&x| x as f32).collect(),
            (None, BetaSchedule::Linear) => {
                torch_linspace_f32(config.beta_start as f32, config.beta_end as f32, n)
            }
            (None, BetaSchedule::ScaledLinear) => torch_linspace_f32(
                config.beta_start.sqrt() as f32,
                config.beta_end.sqrt() as f32,
                n,
            )
            .into_iter()
            .map(|x| x * x)
            .collect(),
            (None, BetaSchedule::SquaredCosCapV2) => cosine_betas(n),
        };
        // torch's CPU cumprod accumulates a float tensor in double (ATen `acc_type`).
        let mut product = 1.0f64;
        let alphas_cumprod = betas
            .iter()
            .map(|b| {
                product *= (1.0 - b) as f64;
                product as f32
            })
            .collect();
        Self {
            betas,
            alphas_cumprod,
        }
    }

    /// The forward process `sqrt(a_t) x0 + sqrt(1 - a_t) noise`, one timestep per batch item
    /// (diffusers `DDPMScheduler.add_noise`).
    ///
    /// # Shapes
    /// - `original`, `noise`: `[batch, ...]`; `timesteps`: `batch` values below T.
    pub fn add_noise<B: Backend, const D: usize>(
        &self,
        original: Tensor<B, D>,
        noise: Tensor<B, D>,
        timesteps: &[usize],
    ) -> Tensor<B, D> {
        let (signal, noise_scale) = self.scales(timesteps, &original.device());
        original * signal + noise * noise_scale
    }

    /// The v-prediction target `sqrt(a_t) noise - sqrt(1 - a_t) x0` (diffusers
    /// `DDPMScheduler.get_velocity`).
    ///
    /// # Shapes
    /// - as [`Self::add_noise`].
    pub fn velocity<B: Backend, const D: usize>(
        &self,
        original: Tensor<B, D>,
        noise: Tensor<B, D>,
        timesteps: &[usize],
    ) -> Tensor<B, D> {
        let (signal, noise_scale) = self.scales(timesteps, &original.device());
        noise * signal - original * noise_scale
    }

    /// `sqrt(a_t)` and `sqrt(1 - a_t)` per batch item, as `[batch, 1, 1, ...]` tensors.
    fn scales<B: Backend, const D: usize>(
        &self,
        timesteps: &[usize],
        device: &B::Device,
    ) -> (Tensor<B, D>, Tensor<B, D>) {
        let (signal, noise): (Vec<f32>, Vec<f32>) = timesteps
            .iter()
            .map(|&t| {
                let a = self.alphas_cumprod[t];
                (a.sqrt(), (1.0 - a).sqrt())
            })
            .unzip();
        (per_item(signal, device), per_item(noise, device))
    }
}

impl NoiseSchedule {
    /// Min-SNR-gamma loss weight of timestep `t` (Hang et al. 2023, "Efficient Diffusion
    /// Training via Min-SNR Weighting Strategy"): the signal-to-noise ratio `a_t / (1 - a_t)`
    /// capped at `gamma`, over what the `prediction` target's loss already weighs by: SNR for
    /// the noise, SNR + 1 for v, 1 for the image. Low-noise steps, whose targets are easy,
    /// stop dominating the gradient.
    pub fn min_snr_weight(&self, t: usize, gamma: f64, prediction: PredictionType) -> f32 {
        let a = self.alphas_cumprod[t] as f64;
        let snr = a / (1.0 - a);
        let capped = snr.min(gamma);
        (match prediction {
            PredictionType::Epsilon => capped / snr,
            PredictionType::VPrediction => capped / (snr + 1.0),
            PredictionType::Sample => capped,
        }) as f32
    }
}

/// A `[batch, 1, 1, ...]` tensor of per-item factors.
fn per_item<B: Backend, const D: usize>(values: Vec<f32>, device: &B::Device) -> Tensor<B, D> {
    let mut shape = [1usize; D];
    shape[0] = values.len();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `torch.linspace(start, end, steps, dtype=float32)` to the bit: torch fills the first half
/// from `start` and the second half back from `end` (ATen `RangeFactoriesKernel.cpp`), with
/// an f32 step but each `start + step * i` rounded once (its kernels fuse the multiply-add;
/// computed here exactly in f64, which agrees on every value of the schedules tested).
pub fn torch_linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = ((end - start) / (steps - 1) as f32) as f64;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| {
            if i < halfway {
                (start as f64 + step * i as f64) as f32
            } else {
                (end as f64 - step * (steps - i - 1) as f64) as f32
            }
        })
        .collect()
}

/// diffusers `betas_for_alpha_bar` (cosine), computed in f64 and stored as f32 as it does.
fn cosine_betas(n: usize) -> Vec<f32> {
    let alpha_bar = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    (0..n)
        .map(|i| {
            let t1 = i as f64 / n as f64;
            let t2 = (i + 1) as f64 / n as f64;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999) as f32
        })
        .collect()
}

/// The inference timesteps of `config` for `steps` steps, highest first, as f64 before
/// rounding (`np.linspace` / `np.arange` values; diffusers `set_timesteps`).
pub fn spaced_timesteps(config: &SchedulerConfig, steps: usize) -> Vec<f64> {
    let t = config.num_train_timesteps;
    match config.timestep_spacing {
        TimestepSpacing::Linspace => {
            // np.linspace(0, T - 1, N): start + i * step, the last value exactly T - 1.
            let stop = (t - 1) as f64;
            let mut v: Vec<f64> = if steps == 1 {
                vec![0.0]
            } else {
                let delta = stop / (steps - 1) as f64;
                (0..steps)
                    .map(|i| {
                        if i + 1 == steps {
                            stop
                        } else {
                            i as f64 * delta
                        }
                    })
                    .collect()
            };
            v.reverse();
            v
        }
        TimestepSpacing::Leading => {
            let ratio = t / steps;
            (0..steps)
                .rev()
                .map(|i| (i * ratio + config.steps_offset) as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            // np.round(np.arange(T, 0, -T / N)) - 1: length ceil(T / (T / N)).
            let ratio = t as f64 / steps as f64;
            let len = (-(t as f64) / -ratio).ceil() as usize;
            (0..len)
                .map(|i| (t as f64 + i as f64 * -ratio).round_ties_even() - 1.0)
                .collect()
        }
    }
}

/// [`spaced_timesteps`] rounded half to even (`np.round`) to integer training timesteps.
pub fn integer_timesteps(config: &SchedulerConfig, steps: usize) -> Vec<i64> {
    spaced_timesteps(config, steps)
        .into_iter()
        .map(|x| x.round_ties_even() as i64)
        .collect()
}

/// Euler's timesteps and sigmas: `sqrt((1 - a) / a)` interpolated linearly at the spaced
/// timesteps (`np.interp`, in f64), then the final sigma (diffusers `set_timesteps`).
pub(crate) fn euler_sigmas(
    config: &SchedulerConfig,
    schedule: &NoiseSchedule,
    steps: usize,
) -> (Vec<f32>, Vec<f32>) {
    let timesteps: Vec<f32> = spaced_timesteps(config, steps)
        .into_iter()
        .map(|t| t as f32)
        .collect();
    let base: Vec<f64> = schedule
        .alphas_cumprod
        .iter()
        .map(|&a| ((1.0 - a) / a).sqrt() as f64)
        .collect();
    let last = base.len() - 1;
    let mut sigmas: Vec<f32> = timesteps
        .iter()
        .map(|&t| {
            let x = t as f64;
            if x <= 0.0 {
                return base[0] as f32;
            }
            if x >= last as f64 {
                return base[last] as f32;
            }
            let j = x.floor() as usize;
            let slope = (base[j + 1] - base[j]) / 1.0;
            (slope * (x - j as f64) + base[j]) as f32
        })
        .collect();
    sigmas.push(match config.final_sigmas_type {
        FinalSigmas::Zero => 0.0,
        FinalSigmas::SigmaMin => base[0] as f32,
    });
    (timesteps, sigmas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::config::SchedulerKind;

    #[test]
    fn linspace_ends_exactly_and_cumprod_falls() {
        let v = torch_linspace_f32(0.0001, 0.02, 1000);
        assert_eq!(v[0], 0.0001);
        assert_eq!(v[999], 0.02);
        let s = NoiseSchedule::new(&SchedulerConfig::defaults(SchedulerKind::Ddpm));
        assert!(s.alphas_cumprod.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn min_snr_weights_cap_the_easy_low_noise_steps() {
        let s = NoiseSchedule::new(&SchedulerConfig::defaults(SchedulerKind::Ddpm));
        let snr = |t: usize| {
            let a = s.alphas_cumprod[t] as f64;
            a / (1.0 - a)
        };
        let (v, eps, x0) = (
            PredictionType::VPrediction,
            PredictionType::Epsilon,
            PredictionType::Sample,
        );
        // t = 0: SNR near 10,000, far above gamma 5: the cap applies.
        assert!(snr(0) > 1000.0);
        assert!((s.min_snr_weight(0, 5.0, eps) as f64 - 5.0 / snr(0)).abs() < 1e-7);
        assert!((s.min_snr_weight(0, 5.0, v) as f64 - 5.0 / (snr(0) + 1.0)).abs() < 1e-7);
        assert_eq!(s.min_snr_weight(0, 5.0, x0), 5.0);
        // t = 999: SNR far below gamma: the noise target keeps weight 1, v gets SNR / (SNR + 1).
        assert!(snr(999) < 1e-3);
        assert!((s.min_snr_weight(999, 5.0, eps) - 1.0).abs() < 1e-6);
        assert!((s.min_snr_weight(999, 5.0, v) as f64 - snr(999) / (snr(999) + 1.0)).abs() < 1e-9);
        // For v the weight never exceeds 1 and is largest where SNR meets gamma.
        let w: Vec<f32> = (0..1000).map(|t| s.min_snr_weight(t, 5.0, v)).collect();
        assert!(w.iter().all(|&x| x > 0.0 && x <= 1.0));
        let peak = (0..1000).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap();
        assert!(
            (snr(peak) - 5.0).abs() < 0.5,
            "peak at t={peak}, SNR {}",
            snr(peak)
        );
    }

    #[test]
    fn spacings_pick_diffusers_timesteps() {
        let mut c = SchedulerConfig::defaults(SchedulerKind::Ddim);
        c.steps_offset = 1;
        assert_eq!(integer_timesteps(&c, 4), vec![751, 501, 251, 1]);
        c.timestep_spacing = TimestepSpacing::Trailing;
        assert_eq!(integer_timesteps(&c, 4), vec![999, 749, 499, 249]);
        c.timestep_spacing = TimestepSpacing::Linspace;
        assert_eq!(integer_timesteps(&c, 4), vec![999, 666, 333, 0]);
    }
}
