//! Activations named as HuggingFace's `hidden_act` names them.

use burn::tensor::{Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

/// The MLP activation of a transformer layer (`hidden_act` in HF `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, OpenAI CLIP's approximation (transformers `QuickGELUActivation`).
    #[default]
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact GELU, `x * Phi(x)` (transformers `GELUActivation`).
    #[serde(rename = "gelu")]
    Gelu,
    /// ReLU.
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    /// Applies the activation element-wise.
    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::QuickGelu => super::fused::quick_gelu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::Relu => activation::relu(x),
        }
    }
}
