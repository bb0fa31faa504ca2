//! `scheduler_config.json`: diffusers' scheduler settings, read with each class's own defaults.
//!
//! diffusers gives every scheduler class its own defaults (DDIM spaces timesteps "leading",
//! Euler "linspace"), so a file is read in two passes: its `_class_name` picks the defaults,
//! then the keys it sets replace them. Keys we do not know are ignored, as diffusers ignores
//! them; settings we know but do not implement (zero-SNR rescaling, Karras sigmas, ...) are an
//! error that names the key, never silently dropped.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SchedulerError;

/// Which sampler: diffusers' class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedulerKind {
    /// `DDPMScheduler`: ancestral sampling, fresh noise every step.
    #[serde(rename = "DDPMScheduler")]
    Ddpm,
    /// `DDIMScheduler`: deterministic at eta 0.
    #[serde(rename = "DDIMScheduler")]
    Ddim,
    /// `EulerDiscreteScheduler`: Euler's method on the probability-flow ODE in sigma space.
    #[serde(rename = "EulerDiscreteScheduler")]
    Euler,
}

impl SchedulerKind {
    /// The short names the command line takes: `ddpm`, `ddim`, `euler`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "ddpm" | "ddpmscheduler" => Some(Self::Ddpm),
            "ddim" | "ddimscheduler" => Some(Self::Ddim),
            "euler" | "eulerdiscretescheduler" => Some(Self::Euler),
            _ => None,
        }
    }
}

/// How betas grow over the training timesteps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    /// `beta_start..beta_end`, evenly spaced.
    Linear,
    /// The square of evenly spaced square roots (Stable Diffusion's).
    ScaledLinear,
    /// The cosine schedule (Nichol & Dhariwal), betas capped at 0.999.
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredCosCapV2,
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    /// The noise that was added.
    Epsilon,
    /// The clean sample itself (`original_sample` is Euler's spelling).
    #[serde(alias = "original_sample")]
    Sample,
    /// The velocity `sqrt(a) * noise - sqrt(1 - a) * sample`.
    VPrediction,
}

/// How inference timesteps are picked from the training ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    /// Evenly from 0 to T-1, rounded.
    Linspace,
    /// Multiples of T / N from 0, plus `steps_offset`.
    Leading,
    /// Evenly down from T, minus one (always includes T-1).
    Trailing,
}

/// DDPM's posterior variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarianceType {
    /// The posterior variance (beta tilde).
    FixedSmall,
    /// The same, through its logarithm.
    FixedSmallLog,
    /// The step's beta.
    FixedLarge,
}

/// The last sigma of an Euler schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalSigmas {
    /// End at zero noise.
    Zero,
    /// End at the smallest training sigma.
    SigmaMin,
}

/// A scheduler's settings, with diffusers' key names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerConfig {
    /// The sampler.
    #[serde(rename = "_class_name")]
    pub class_name: SchedulerKind,
    /// Training timesteps T.
    pub num_train_timesteps: usize,
    /// First beta.
    pub beta_start: f64,
    /// Last beta.
    pub beta_end: f64,
    /// How betas grow.
    pub beta_schedule: BetaSchedule,
    /// Explicit betas, replacing the schedule.
    pub trained_betas: Option<Vec<f64>>,
    /// What the model predicts.
    pub prediction_type: PredictionType,
    /// Clamp the predicted clean sample (DDPM, DDIM).
    pub clip_sample: bool,
    /// The clamp's bound.
    pub clip_sample_range: f64,
    /// Dynamic thresholding of the predicted clean sample (Imagen; DDPM, DDIM), in place of
    /// `clip_sample`: per sample, `s` is the `dynamic_thresholding_ratio` quantile of its
    /// absolute values, held to `[1, sample_max_value]`, and the sample is clamped to
    /// `[-s, s]` and divided by `s`. For pixel-space models at high guidance.
    #[serde(default)]
    pub thresholding: bool,
    /// The quantile of dynamic thresholding.
    #[serde(default = "default_thresholding_ratio")]
    pub dynamic_thresholding_ratio: f64,
    /// The largest `s` of dynamic thresholding (1: the same as clipping to [-1, 1]).
    #[serde(default = "default_sample_max_value")]
    pub sample_max_value: f64,
    /// DDIM: the alpha product after the last step is 1 (else the first training alpha's).
    pub set_alpha_to_one: bool,
    /// Added to "leading" timesteps.
    pub steps_offset: usize,
    /// How inference timesteps are picked.
    pub timestep_spacing: TimestepSpacing,
    /// DDPM's variance.
    pub variance_type: VarianceType,
    /// Euler's last sigma.
    pub final_sigmas_type: FinalSigmas,
}

fn default_thresholding_ratio() -> f64 {
    0.995
}

fn default_sample_max_value() -> f64 {
    1.0
}

impl SchedulerConfig {
    /// diffusers' defaults for `kind` (its `__init__` arguments).
    pub fn defaults(kind: SchedulerKind) -> Self {
        Self {
            class_name: kind,
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            trained_betas: None,
            prediction_type: PredictionType::Epsilon,
            clip_sample: kind != SchedulerKind::Euler,
            clip_sample_range: 1.0,
            thresholding: false,
            dynamic_thresholding_ratio: default_thresholding_ratio(),
            sample_max_value: default_sample_max_value(),
            set_alpha_to_one: true,
            steps_offset: 0,
            timestep_spacing: match kind {
                SchedulerKind::Euler => TimestepSpacing::Linspace,
                _ => TimestepSpacing::Leading,
            },
            variance_type: VarianceType::FixedSmall,
            final_sigmas_type: FinalSigmas::Zero,
        }
    }

    /// Reads a `scheduler_config.json`. `kind` overrides the file's `_class_name` (a DDIM run
    /// of a pipeline saved with a PNDM config, say); without it the file must name a class we
    /// implement.
    pub fn from_file(path: &Path, kind: Option<SchedulerKind>) -> Result<Self, SchedulerError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchedulerError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| SchedulerError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_json(&value, kind).map_err(|e| match e {
            SchedulerError::Config { reason, .. } => SchedulerError::Config {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Reads the settings from a parsed `scheduler_config.json` (see [`Self::from_file`]).
    pub fn from_json(value: &Value, kind: Option<SchedulerKind>) -> Result<Self, SchedulerError> {
        let config_error = |reason: String| SchedulerError::Config {
            path: "scheduler config".into(),
            reason,
        };
        let object = value
            .as_object()
            .ok_or_else(|| config_error("expected a JSON object".into()))?;
        let kind = match kind {
            Some(k) => k,
            None => {
                let name = object
                    .get("_class_name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| config_error("no `_class_name`".into()))?;
                serde_json::from_value(Value::String(name.into())).map_err(|_| {
                    SchedulerError::Unsupported {
                        key: "_class_name".into(),
                        value: name.into(),
                    }
                })?
            }
        };
        refuse_unimplemented(object)?;
        let mut merged = serde_json::to_value(Self::defaults(kind)).expect("config serializes");
        let slots = merged.as_object_mut().expect("an object");
        for (key, v) in object {
            if key != "_class_name" && slots.contains_key(key) {
                slots.insert(key.clone(), v.clone());
            }
        }
        let config: Self =
            serde_json::from_value(merged).map_err(|e| config_error(e.to_string()))?;
        config.check_thresholding().map_err(config_error)?;
        if config.num_train_timesteps == 0 {
            return Err(config_error("num_train_timesteps is 0".into()));
        }
        if let Some(betas) = &config.trained_betas
            && betas.len() != config.num_train_timesteps
        {
            return Err(config_error(format!(
                "trained_betas has {} values for {} timesteps",
                betas.len(),
                config.num_train_timesteps
            )));
        }
        Ok(config)
    }
}

/// Dynamic thresholding's two settings, to turn it on over a folder's own scheduler config
/// ([`SchedulerConfig::thresholding`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholding {
    /// `dynamic_thresholding_ratio`: the quantile of absolute values, in (0, 1].
    pub ratio: f64,
    /// `sample_max_value`: the largest threshold, at least 1.
    pub max: f64,
}

impl SchedulerConfig {
    /// This config with dynamic thresholding on at `t`'s settings (checked).
    pub fn with_thresholding(mut self, t: Thresholding) -> Result<Self, String> {
        self.thresholding = true;
        self.dynamic_thresholding_ratio = t.ratio;
        self.sample_max_value = t.max;
        self.check_thresholding()?;
        Ok(self)
    }

    /// Dynamic thresholding's settings, when it is on: a quantile in (0, 1] and a largest
    /// threshold of at least 1.
    pub fn check_thresholding(&self) -> Result<(), String> {
        if !self.thresholding {
            return Ok(());
        }
        let ratio = self.dynamic_thresholding_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(format!(
                "dynamic_thresholding_ratio {ratio}: expected a quantile in (0, 1]"
            ));
        }
        let max = self.sample_max_value;
        if !(max.is_finite() && max >= 1.0) {
            return Err(format!(
                "sample_max_value {max}: expected a finite value of at least 1"
            ));
        }
        Ok(())
    }
}

/// Settings diffusers has that we do not implement: an error rather than another result.
fn refuse_unimplemented(object: &serde_json::Map<String, Value>) -> Result<(), SchedulerError> {
    let refuse = |key: &str, value: &Value| {
        Err(SchedulerError::Unsupported {
            key: key.into(),
            value: value.to_string(),
        })
    };
    for key in [
        "rescale_betas_zero_snr",
        "use_karras_sigmas",
        "use_exponential_sigmas",
        "use_beta_sigmas",
    ] {
        if let Some(v) = object.get(key)
            && v.as_bool() == Some(true)
        {
            return refuse(key, v);
        }
    }
    let allowed: [(&str, &[&str]); 3] = [
        ("interpolation_type", &["linear"]),
        ("timestep_type", &["discrete"]),
        (
            "variance_type",
            &["fixed_small", "fixed_small_log", "fixed_large"],
        ),
    ];
    for (key, values) in allowed {
        if let Some(v) = object.get(key)
            && !v.is_null()
            && !v.as_str().is_some_and(|s| values.contains(&s))
        {
            return refuse(key, v);
        }
    }
    Ok(())
}
