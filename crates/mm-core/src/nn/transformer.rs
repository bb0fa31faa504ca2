//! The transformer encoder shared by every tower: pre-norm as in CLIP (`x + attn(ln1(x))`,
//! then `x + mlp(ln2(x))`) or post-norm as in BERT (`ln1(x + attn(x))`, then
//! `ln2(x + mlp(x))`). Where its weights sit in a checkpoint is data ([`EncoderKeys`]): one
//! table per model family, so the same layer loads CLIP's and BERT's files.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Tensor, backend::Backend};

use crate::hf::{HfParams, ParamVisitor};

use super::ConfigError;
use super::activation::Activation;
use super::attention::{MultiHeadSelfAttention, MultiHeadSelfAttentionConfig};
use super::fused::{add, layer_norm};

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
    /// Whether each sub-block normalizes its input (pre-norm, CLIP) rather than its residual
    /// sum (post-norm, BERT).
    #[config(default = true)]
    pub norm_first: bool,
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

/// One transformer block (transformers `CLIPEncoderLayer` when pre-norm, `BertLayer` when
/// post-norm).
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    /// Norm of the attention sub-block (before it when pre-norm, after the residual sum when
    /// post-norm).
    pub layer_norm1: LayerNorm<B>,
    /// Self-attention.
    pub self_attn: MultiHeadSelfAttention<B>,
    /// Norm of the MLP sub-block.
    pub layer_norm2: LayerNorm<B>,
    /// The MLP.
    pub mlp: FeedForward<B>,
    /// Pre-norm (true) or post-norm (false); from the config, not stored in records.
    #[module(skip)]
    pub norm_first: bool,
    /// The layer norms' epsilon (Burn's `LayerNorm` keeps its own private), for the fused
    /// training path; from the config, not stored in records.
    #[module(skip)]
    pub layer_norm_eps: f64,
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
            norm_first: self.norm_first,
            layer_norm_eps: self.layer_norm_eps,
        })
    }
}

impl<B: Backend> EncoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, tokens, hidden]`; `mask`: `[batch or 1, tokens, tokens]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 3, Bool>>) -> Tensor<B, 3> {
        let norm = |n: &LayerNorm<B>, x| layer_norm(n, x, self.layer_norm_eps);
        if self.norm_first {
            let x = add(
                x.clone(),
                self.self_attn.forward(norm(&self.layer_norm1, x), mask),
            );
            add(x.clone(), self.mlp.forward(norm(&self.layer_norm2, x)))
        } else {
            let x = norm(
                &self.layer_norm1,
                add(x.clone(), self.self_attn.forward(x, mask)),
            );
            norm(&self.layer_norm2, add(x.clone(), self.mlp.forward(x)))
        }
    }
}

impl<B: Backend> FeedForward<B> {
    /// # Shapes
    /// - `x`: `[..., hidden]`; output the same shape
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let h = self.act.forward(super::fused::linear(&self.fc1, x));
        super::fused::linear(&self.fc2, h)
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

    /// `norm.forward(x)` with the fused layer norm (`super::fused::layer_norm`), for a norm
    /// outside the layers built with the same epsilon as theirs (a tower's first or last
    /// norm); Burn's own when the stack has no layer to read the epsilon from.
    pub fn same_norm<const D: usize>(&self, norm: &LayerNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
        match self.layers.first() {
            Some(layer) => layer_norm(norm, x, layer.layer_norm_eps),
            None => norm.forward(x),
        }
    }
}

/// Where a transformer stack's weights sit in a checkpoint: the data of its key table.
#[derive(Debug, Clone, Copy)]
pub struct EncoderKeys {
    /// The prefix of layer `i`, before `i` (e.g. `layers.`).
    pub layers: &'static str,
    /// Each sub-module's name within a layer.
    pub layer_norm1: &'static str,
    /// Query projection.
    pub q_proj: &'static str,
    /// Key projection.
    pub k_proj: &'static str,
    /// Value projection.
    pub v_proj: &'static str,
    /// Attention output projection.
    pub out_proj: &'static str,
    /// Norm of the MLP sub-block.
    pub layer_norm2: &'static str,
    /// MLP expansion.
    pub fc1: &'static str,
    /// MLP contraction.
    pub fc2: &'static str,
}

impl EncoderKeys {
    /// transformers `modeling_clip.py` `CLIPEncoder` (also our audio encoder's names).
    pub const CLIP: Self = Self {
        layers: "layers.",
        layer_norm1: "layer_norm1.",
        q_proj: "self_attn.q_proj.",
        k_proj: "self_attn.k_proj.",
        v_proj: "self_attn.v_proj.",
        out_proj: "self_attn.out_proj.",
        layer_norm2: "layer_norm2.",
        fc1: "mlp.fc1.",
        fc2: "mlp.fc2.",
    };

    /// transformers `modeling_bert.py` `BertEncoder`.
    pub const BERT: Self = Self {
        layers: "layer.",
        layer_norm1: "attention.output.LayerNorm.",
        q_proj: "attention.self.query.",
        k_proj: "attention.self.key.",
        v_proj: "attention.self.value.",
        out_proj: "attention.output.dense.",
        layer_norm2: "output.LayerNorm.",
        fc1: "intermediate.dense.",
        fc2: "output.dense.",
    };

    /// transformers `modeling_vilt.py` `ViltEncoder` (pre-norm, ViT's names).
    pub const VILT: Self = Self {
        layers: "layer.",
        layer_norm1: "layernorm_before.",
        q_proj: "attention.attention.query.",
        k_proj: "attention.attention.key.",
        v_proj: "attention.attention.value.",
        out_proj: "attention.output.dense.",
        layer_norm2: "layernorm_after.",
        fc1: "intermediate.dense.",
        fc2: "output.dense.",
    };
}

impl<B: Backend> EncoderLayer<B> {
    /// Visits the layer's parameters under `prefix` and the names of `keys`.
    pub fn visit_keys(&mut self, prefix: &str, keys: &EncoderKeys, v: &mut dyn ParamVisitor<B>) {
        let p = |name: &str| format!("{prefix}{name}");
        self.layer_norm1.visit_hf(&p(keys.layer_norm1), v);
        self.self_attn.q_proj.visit_hf(&p(keys.q_proj), v);
        self.self_attn.k_proj.visit_hf(&p(keys.k_proj), v);
        self.self_attn.v_proj.visit_hf(&p(keys.v_proj), v);
        self.self_attn.out_proj.visit_hf(&p(keys.out_proj), v);
        self.layer_norm2.visit_hf(&p(keys.layer_norm2), v);
        self.mlp.fc1.visit_hf(&p(keys.fc1), v);
        self.mlp.fc2.visit_hf(&p(keys.fc2), v);
    }
}

impl<B: Backend> TransformerEncoder<B> {
    /// Visits every layer's parameters: layer `i` under `{prefix}{keys.layers}{i}.`.
    pub fn visit_keys(&mut self, prefix: &str, keys: &EncoderKeys, v: &mut dyn ParamVisitor<B>) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_keys(&format!("{prefix}{}{i}.", keys.layers), keys, v);
        }
    }
}

/// CLIP's names ([`EncoderKeys::CLIP`]), the default for the towers that use them.
impl<B: Backend> HfParams<B> for TransformerEncoder<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.visit_keys(prefix, &EncoderKeys::CLIP, v);
    }
}
