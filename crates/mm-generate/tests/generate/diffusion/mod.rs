//! Text-to-image diffusion: the schedulers, the UNet, the VAE and the whole pipeline against
//! diffusers (fixture scripts under `tests/fixtures/`), and training, resuming and judging a
//! tiny pixel-space model (by the shape judge and by CLIP score).

mod clip_score;
mod common;
mod pipeline;
mod schedulers;
mod train;
mod unet;
mod vae;
