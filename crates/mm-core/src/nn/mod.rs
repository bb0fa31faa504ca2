//! Building blocks shared by the transformer towers of every modality.

pub mod activation;
pub mod attention;
pub mod mlp;
pub mod transformer;

pub use activation::Activation;
pub use attention::{MultiHeadSelfAttention, MultiHeadSelfAttentionConfig};
pub use mlp::{Mlp, MlpConfig};
pub use transformer::{
    EncoderLayer, EncoderLayerConfig, FeedForward, FeedForwardConfig, TransformerEncoder,
    TransformerEncoderConfig,
};
