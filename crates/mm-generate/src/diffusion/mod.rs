//! Diffusion: noise schedules and samplers compatible with diffusers' folders.
//!
//! - [`config`]: `scheduler_config.json` with each diffusers class's defaults.
//! - [`schedule`]: betas, alpha products, inference timesteps, the noising process.
//! - [`scheduler`]: DDPM, DDIM and Euler steps.
//! - [`folder`]: diffusers model folders (config and weights), read and written.
//! - [`unet`]: the conditional UNet that predicts the noise.
//! - [`vae`]: the KL autoencoder between pixels and latents.
//! - [`text`]: prompts to the CLIP token states the UNet attends to.
//! - [`pipeline`]: the guided sampling loop, text to image.
//! - [`train`]: training a pixel-space model with conditioning dropout and EMA weights.
//! - [`judge`], [`eval`]: scoring whether generated shapes follow their prompts.
//! - [`clip_score`]: the CLIP score of generated images beside real ones, for any captions.

pub mod clip_score;
pub mod config;
pub mod eval;
pub mod folder;
pub mod judge;
pub mod pipeline;
pub mod schedule;
pub mod scheduler;
pub mod text;
pub mod train;
pub mod unet;
pub mod vae;

pub use config::{SchedulerConfig, SchedulerKind, Thresholding};
pub use pipeline::{GenerateOptions, PipelineError, TextToImage};
pub use schedule::NoiseSchedule;
pub use scheduler::{Scheduler, StepOutput};

/// Why a scheduler could not be read or stepped.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The config file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The config is not valid.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting diffusers has that this crate does not implement.
    #[error("scheduler setting `{key}: {value}` is not supported")]
    Unsupported {
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
    /// Zero steps, or more than the training timesteps.
    #[error("{steps} inference steps: expected 1 to {train} (the training timesteps)")]
    Steps {
        /// The steps asked for.
        steps: usize,
        /// The training timesteps.
        train: usize,
    },
    /// A step index past the schedule.
    #[error("step {index} of a {steps}-step schedule")]
    StepIndex {
        /// The index asked for.
        index: usize,
        /// The number of steps.
        steps: usize,
    },
    /// The step adds noise and none was given.
    #[error("step {index} adds noise: pass a standard normal tensor shaped like the sample")]
    NoiseRequired {
        /// The step.
        index: usize,
    },
    /// Tensors of different shapes.
    #[error("shape mismatch: {0}")]
    Shape(String),
}
