//! Image captioning: metrics against the reference scorers, transformers parity of the model
//! and of `generate()`, training through the house loop, and the fused kernels' gradients.

mod dropout;
mod gradients;
mod hf;
mod metrics;
mod scst;
mod train;
