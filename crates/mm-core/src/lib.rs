//! `mm-core`: what every modality crate shares.
//!
//! - [`device`]: the one place where `--device cpu|ndarray|wgpu|cuda[:N]` becomes a Burn backend.
//! - [`encoder`]: the [`Encoder`](encoder::Encoder) trait every tower implements.
//! - [`loss`]: the symmetric contrastive (InfoNCE) loss and the learnable logit scale.
//! - [`metrics`]: Recall@K in both retrieval directions and top-k accuracy.
//! - [`hf`]: HuggingFace safetensors weights in and out, through one key table per model.
//! - [`blas`]: an optional system BLAS (`MM_BLAS`, e.g. Intel's MKL) for the CPU path's GEMMs.
//! - [`cca`]: linear CCA (device covariances, host eigenproblem) and the deep CCA loss.
//! - [`fusion`]: the [`Fusion`](fusion::Fusion) trait and six fusion strategies.
//! - [`info`]: entropy, (conditional) mutual information, PID, the InfoNCE bound.
//! - [`memory`]: the allocator setting that keeps freed tensor memory in the process.
//! - [`nn`]: attention, the transformer layer (pre- or post-norm, key tables as data), MLPs.
//! - [`train`]: the one training loop (burn-train's `Learner`, fed by step, resumable, logged).
#![warn(missing_docs)]

pub mod blas;
pub mod cca;
pub mod device;
pub mod encoder;
pub mod fusion;
pub mod hf;
pub mod info;
pub mod loss;
pub mod memory;
pub mod metrics;
pub mod nn;
pub mod pool;
pub mod train;

pub use device::{BackendJob, DeviceError, DeviceSpec, dispatch, replicas};
pub use encoder::Encoder;
