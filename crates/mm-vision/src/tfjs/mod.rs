//! TensorFlow.js graph models on Burn: [`GraphModel`] reads a `model.json` and its weight
//! shards, [`TfjsModel`] runs the convolutional part of such a graph (convolutions, depthwise
//! convolutions, their fused forms, element-wise arithmetic, ReLU / ReLU6 / sigmoid, means,
//! concatenation, bilinear resizing, max pooling) on any backend. This is how pretrained
//! image networks published as npm packages become feature extractors here.

mod format;
mod layout;
mod run;

pub use format::{Constant, GraphModel, Node};
pub use run::TfjsModel;

/// What can go wrong reading or running a graph model.
#[derive(Debug, thiserror::Error)]
pub enum TfjsError {
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
    /// The files are not a graph model as expected.
    #[error("malformed TensorFlow.js graph model: {0}")]
    Format(String),
    /// The graph asks for something this runner does not do.
    #[error("TensorFlow.js graph not supported: {0}")]
    Unsupported(String),
}

#[cfg(test)]
mod tests;
