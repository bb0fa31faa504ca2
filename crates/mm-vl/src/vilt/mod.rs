//! ViLT: patches and tokens in one transformer (transformers `ViltModel`), with its
//! image-text matching, masked-language-modelling and question-answering heads, and
//! HuggingFace folders in and out.
//!
//! - [`model`]: the single-stream transformer.
//! - [`heads`]: the task heads and [`Vilt`], the transformer with whichever heads it has.
//! - [`hf`]: HF folders in and out.
//! - [`pretrain`]: ITM + MLM pre-training batches and losses on captioned images.
//! - [`eval`]: ITM AUC and masked-word accuracy with and without the image.
//! - [`train`]: pre-training, then VQA fine-tuning, through the house loop.

pub mod eval;
pub mod heads;
pub mod hf;
pub mod model;
pub mod pretrain;
pub mod train;

pub use heads::{Heads, Vilt};
pub use hf::{LoadedVilt, export_hf_vilt, load_hf_vilt};
pub use model::{ViltConfig, ViltModel, ViltOutput};

use std::path::PathBuf;

/// Why a ViLT could not be built, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ViltError {
    /// The sizes do not fit together.
    #[error("invalid ViLT: {0}")]
    Config(String),
    /// An input does not fit the model.
    #[error("{0}")]
    Input(String),
    /// A folder's file is unreadable or not what a ViLT folder holds.
    #[error("{path}: {reason}")]
    Folder {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights do not fit the config.
    #[error(transparent)]
    Weights(#[from] mm_core::hf::HfError),
}
