//! Building blocks shared by the transformer towers of every modality.

pub mod activation;
pub mod attention;
pub mod fused;
pub mod hf_defaults;
pub mod materialize;
pub mod mlp;
pub mod pool3d;
pub mod transformer;

pub use activation::Activation;
pub use materialize::materialize;

/// A model configuration that cannot be built; the message names the setting and its value.
///
/// Every `*Config::init` in the workspace that can meet a bad setting validates first and
/// returns this instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
pub use attention::{MultiHeadSelfAttention, MultiHeadSelfAttentionConfig};
pub use mlp::{Mlp, MlpConfig};
pub use transformer::{
    EncoderKeys, EncoderLayer, EncoderLayerConfig, FeedForward, FeedForwardConfig,
    TransformerEncoder, TransformerEncoderConfig,
};
