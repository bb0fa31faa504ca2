//! The pre-norm transformer encoder of CLIP: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Tensor, backend::Backend};

use crate::hf::HfParams;

use super::ConfigError;
use super::activation::Activation;
use super::attention::{MultiHeadSelfAttention, MultiHeadSelfAttentionConfig};

/// Configuration of one [`EncoderLayer`]; field names follow HF `config.json`.
#[derive(Config, Debug)]
pub struct EncoderLayerConfig {
    /// Model width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// MLP activation.
    #[config(default = "Activation::QuickGelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

/// Configuration of a [`FeedForward`] block.
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Inner width.
    pub intermediate_size: usize,
    /// Activation between the two layers.
    #[config(default = "Activation::QuickGelu")]
    pub hidden_act: Activation,
}

impl FeedForwardConfig {
    /// Builds the block on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> FeedForward<B> {
        FeedForward {
            fc1: LinearConfig::new(self.hidden_size, self.intermediate_size).init(device),
            fc2: LinearConfig::new(self.intermediate_size, self.hidden_size).init(device),
            act: self.hidden_act,
        }
    }
}

/// The two-layer feed-forward block of a transformer layer (HF `mlp.fc1` / `mlp.fc2`).
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    /// Expansion.
    pub fc1: Linear<B>,
    /// Contraction.
    pub fc2: Linear<B>,
    /// Activation between them (stateless; rebuilt from the config, not stored).
    #[module(skip)]
    pub act: Activation,
}

/// One pre-norm transformer block (transformers `modeling_clip.py` `CLIPEncoderLayer`).
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    /// Norm before attention.
    pub layer_norm1: LayerNorm<B>,
    /// Self-attention.
    pub self_attn: MultiHeadSelfAttention<B>,
    /// Norm before the MLP.
    pub layer_norm2: LayerNorm<B>,
    /// The MLP.
    pub mlp: FeedForward<B>,
}

impl EncoderLayerConfig {
    /// Builds the layer on `device`; an error when the heads do not divide the width.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<EncoderLayer<B>, ConfigError> {
        let norm = || {
            LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        Ok(EncoderLayer {
            layer_norm1: norm(),
            self_attn: MultiHeadSelfAttentionConfig::new(
                self.hidden_size,
                self.num_attention_heads,
            )
            .init(device)?,
            layer_norm2: norm(),
            mlp: FeedForwardConfig::new(self.hidden_size, self.intermediate_size)
                .with_hidden_act(self.hidden_act)
                .init(device),
        })
    }
}

impl<B: Backend> EncoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, tokens, hidden]`; `mask`: `[batch or 1, tokens, tokens]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 3, Bool>>) -> Tensor<B, 3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), mask);
        let h = self.mlp.fc1.forward(self.layer_norm2.forward(x.clone()));
        x + self.mlp.fc2.forward(self.mlp.act.forward(h))
    }
}

/// Configuration of a [`TransformerEncoder`].
#[derive(Config, Debug)]
pub struct TransformerEncoderConfig {
    /// The layer shape.
    pub layer: EncoderLayerConfig,
    /// Number of layers.
    pub num_hidden_layers: usize,
}

/// A stack of [`EncoderLayer`]s.
#[derive(Module, Debug)]
pub struct TransformerEncoder<B: Backend> {
    /// The layers, input first.
    pub layers: Vec<EncoderLayer<B>>,
}

impl TransformerEncoderConfig {
    /// A stack of `layers` pre-norm layers of the given shape (the CLIP towers' encoder).
    pub fn pre_norm(
        hidden_size: usize,
        intermediate_size: usize,
        num_attention_heads: usize,
        layers: usize,
        hidden_act: Activation,
        layer_norm_eps: f64,
    ) -> Self {
        let layer = EncoderLayerConfig::new(hidden_size, intermediate_size, num_attention_heads)
            .with_hidden_act(hidden_act)
            .with_layer_norm_eps(layer_norm_eps);
        Self::new(layer, layers)
    }

    /// Builds the stack on `device`; an error when the heads do not divide the width.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<TransformerEncoder<B>, ConfigError> {
        Ok(TransformerEncoder {
            layers: (0..self.num_hidden_layers)
                .map(|_| self.layer.init(device))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl<B: Backend> TransformerEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch, tokens, hidden]`; `mask`: `[batch or 1, tokens, tokens]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, mut x: Tensor<B, 3>, mask: Option<Tensor<B, 3, Bool>>) -> Tensor<B, 3> {
        for layer in &self.layers {
            x = layer.forward(x, mask.clone());
        }
        x
    }
}

// HF key table of the transformer: transformers `modeling_clip.py` `CLIPEncoder` names.
impl<B: Backend> HfParams<B> for EncoderLayer<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn crate::hf::ParamVisitor<B>) {
        self.layer_norm1
            .visit_hf(&format!("{prefix}layer_norm1."), v);
        self.self_attn
            .q_proj
            .visit_hf(&format!("{prefix}self_attn.q_proj."), v);
        self.self_attn
            .k_proj
            .visit_hf(&format!("{prefix}self_attn.k_proj."), v);
        self.self_attn
            .v_proj
            .visit_hf(&format!("{prefix}self_attn.v_proj."), v);
        self.self_attn
            .out_proj
            .visit_hf(&format!("{prefix}self_attn.out_proj."), v);
        self.layer_norm2
            .visit_hf(&format!("{prefix}layer_norm2."), v);
        self.mlp.fc1.visit_hf(&format!("{prefix}mlp.fc1."), v);
        self.mlp.fc2.visit_hf(&format!("{prefix}mlp.fc2."), v);
    }
}

impl<B: Backend> HfParams<B> for TransformerEncoder<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn crate::hf::ParamVisitor<B>) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_hf(&format!("{prefix}layers.{i}."), v);
        }
    }
}
