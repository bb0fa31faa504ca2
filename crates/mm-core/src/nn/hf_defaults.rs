//! transformers' config defaults that several model configs share, for
//! `#[serde(default = "mm_core::nn::hf_defaults::...")]` on fields an HF `config.json` may
//! leave out.

use super::Activation;

/// `layer_norm_eps` of BERT, ViT and ViLT: 1e-12.
pub fn layer_norm_eps() -> f64 {
    1e-12
}

/// `initializer_range`: 0.02.
pub fn initializer_range() -> f64 {
    0.02
}

/// `num_channels`: 3 (RGB).
pub fn num_channels() -> usize {
    3
}

/// `type_vocab_size` (and ViLT's `modality_type_vocab_size`): 2.
pub fn two_types() -> usize {
    2
}

/// `qkv_bias`: true.
pub fn yes() -> bool {
    true
}

/// `hidden_act`: exact GELU.
pub fn gelu() -> Activation {
    Activation::Gelu
}
