//! diffusers' `AutoencoderKL`: the latent space of latent diffusion.

pub mod config;
pub mod hf;
pub mod model;

pub use config::AutoencoderKLConfig;
pub use hf::{load_vae, read_vae_config, save_vae};
pub use model::{AutoencoderKL, LatentDistribution};
