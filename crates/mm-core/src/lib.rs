//! `mm-core`: what every modality crate shares.
//!
//! - [`device`]: the one place where `--device cpu|ndarray|wgpu|cuda[:N]` becomes a Burn backend.
//! - [`encoder`]: the [`Encoder`](encoder::Encoder) trait every tower implements.
//! - [`loss`]: the symmetric contrastive (InfoNCE) loss and the learnable logit scale.
//! - [`metrics`]: Recall@K in both retrieval directions and top-k accuracy.
//! - [`manifest`]: the public JSONL dataset manifest format.
//! - [`checkpoint`]: atomic file writes for checkpoints.
//! - [`hf`]: HuggingFace safetensors weights in and out, through one key table per model.
//! - [`matrix`]: host matrices, `.npy` and CSV files.
//! - [`cca`]: linear CCA (device covariances, host eigenproblem) and the deep CCA loss.
//! - [`fusion`]: the [`Fusion`](fusion::Fusion) trait and six fusion strategies.
//! - [`info`]: entropy, (conditional) mutual information, PID, the InfoNCE bound.
//! - [`train`]: the one training loop (burn-train's `Learner`, fed by step, resumable, logged).
//! - [`fetch`]: packages from registries by name (`npm pack`), checksummed and cached.
#![warn(missing_docs)]

pub mod cca;
pub mod checkpoint;
pub mod device;
pub mod encoder;
pub mod fetch;
pub mod fusion;
pub mod hf;
pub mod info;
pub mod loss;
pub mod manifest;
pub mod matrix;
pub mod metrics;
pub mod nn;
pub mod train;

pub use device::{BackendJob, DeviceError, DeviceSpec, dispatch, replicas};
pub use encoder::Encoder;
