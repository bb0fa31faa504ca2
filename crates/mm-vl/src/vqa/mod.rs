//! Visual question answering with the guide's two-tower model (image and question encoders,
//! cross-attention fusion, an answer classifier).
//!
//! - [`any`]: any VQA folder (two-tower, ours or transformers' ViLT) behind one face.
//! - [`data`]: question-answer manifests in memory, the question-only baseline, VQA's soft
//!   accuracy.
//! - [`model`]: the model.
//! - [`train`]: training through the house loop.
//! - [`eval`]: accuracy per answer type beside the baseline and the image-blanked model;
//!   answering one question.

pub mod any;
pub mod data;
pub mod eval;
pub mod model;
pub mod train;

pub use any::AnyVqa;
pub use data::{QuestionOnly, VqaItem, VqaSet};
pub use eval::{
    AnswerModel, ScoredAnswer, VqaReport, evaluate_vqa, load_vqa, one_question, top_answers_batch,
};
pub use model::{VqaConfig, VqaModel};
pub use train::{VqaTrainConfig, train_vqa};

/// Why a VQA model or set could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum VqaError {
    /// The model's sizes do not fit together.
    #[error("invalid VQA model: {0}")]
    Config(String),
    /// The data is unusable.
    #[error("{0}")]
    Data(String),
    /// A manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] mm_data::manifest::ManifestError),
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] mm_vision::ImageError),
    /// A question could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] mm_text::TokenizerError),
    /// A model folder could not be loaded.
    #[error("{0}")]
    Model(String),
}
