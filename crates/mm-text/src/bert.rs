//! BERT encoders (HF `BertModel`) with sentence-transformers' mean pooling: the text side of
//! sentence-embedding models such as all-MiniLM-L6-v2 (whose folders load in
//! [`crate::sentence`]).
//!
//! Post-norm layers (`x = LN(x + attn(x))`, `x = LN(x + mlp(x))`), absolute positions, token
//! types, padding masked out of attention. Names follow transformers `modeling_bert.py`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig};
use burn::tensor::{Bool, Int, Tensor, backend::Backend};
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_core::nn::fused::add;
use mm_core::nn::{
    Activation, ConfigError, EncoderKeys, EncoderLayerConfig, TransformerEncoder,
    TransformerEncoderConfig,
};

pub use crate::sentence::{ALL_MINILM_L6_V2, SentenceEncoder, SentenceError, prepare_minilm};

/// BERT configuration; field names are HF `BertConfig`'s.
#[derive(Config, Debug, PartialEq)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Learned positions.
    #[config(default = 512)]
    pub max_position_embeddings: usize,
    /// Token types.
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// MLP activation.
    #[config(default = "Activation::Gelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

/// A BERT encoder.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// Token embeddings, `[vocab, hidden]`.
    pub word_embeddings: Param<Tensor<B, 2>>,
    /// Position embeddings, `[positions, hidden]`.
    pub position_embeddings: Param<Tensor<B, 2>>,
    /// Token type embeddings, `[types, hidden]`.
    pub token_type_embeddings: Param<Tensor<B, 2>>,
    /// Norm of the summed embeddings.
    pub embeddings_norm: LayerNorm<B>,
    /// The post-norm layers (the house's transformer, keys [`EncoderKeys::BERT`]).
    pub encoder: TransformerEncoder<B>,
}

impl BertConfig {
    /// Checks that the sizes fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        mm_core::nn::attention::validate_heads(self.hidden_size, self.num_attention_heads)
    }

    /// Validates, then builds the model on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<BertModel<B>, ConfigError> {
        self.validate()?;
        let normal = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let layer = EncoderLayerConfig::new(
            self.hidden_size,
            self.intermediate_size,
            self.num_attention_heads,
        )
        .with_hidden_act(self.hidden_act)
        .with_layer_norm_eps(self.layer_norm_eps)
        .with_norm_first(false);
        Ok(BertModel {
            word_embeddings: normal.init([self.vocab_size, self.hidden_size], device),
            position_embeddings: normal
                .init([self.max_position_embeddings, self.hidden_size], device),
            token_type_embeddings: normal.init([self.type_vocab_size, self.hidden_size], device),
            embeddings_norm: LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            encoder: TransformerEncoderConfig::new(layer, self.num_hidden_layers).init(device)?,
        })
    }
}

/// BERT's text embeddings under `prefix`: the word, position and token-type tables
/// (`{prefix}word_embeddings.weight`, ...) and their `{prefix}LayerNorm.`, as transformers'
/// `BertEmbeddings` names them in `BertModel`, in the captioner's `BertLMHeadModel` and on
/// ViLT's text side.
pub fn visit_bert_embeddings<B: Backend>(
    prefix: &str,
    [word, position, token_type]: [&mut Param<Tensor<B, 2>>; 3],
    norm: &mut LayerNorm<B>,
    v: &mut dyn ParamVisitor<B>,
) {
    v.visit(
        &format!("{prefix}word_embeddings.weight"),
        Layout::Same,
        word,
    );
    v.visit(
        &format!("{prefix}position_embeddings.weight"),
        Layout::Same,
        position,
    );
    v.visit(
        &format!("{prefix}token_type_embeddings.weight"),
        Layout::Same,
        token_type,
    );
    norm.visit_hf(&format!("{prefix}LayerNorm."), v);
}

/// The HF key table (transformers `BertModel`, keys without a `bert.` prefix).
impl<B: Backend> HfParams<B> for BertModel<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_bert_embeddings(
            &format!("{prefix}embeddings."),
            [
                &mut self.word_embeddings,
                &mut self.position_embeddings,
                &mut self.token_type_embeddings,
            ],
            &mut self.embeddings_norm,
            v,
        );
        self.encoder
            .visit_keys(&format!("{prefix}encoder."), &EncoderKeys::BERT, v);
    }
}

impl<B: Backend> BertModel<B> {
    /// Last hidden states (transformers `BertModel.forward(...).last_hidden_state`).
    ///
    /// # Shapes
    /// - `ids`, `mask` (1 = token, 0 = padding): `[batch, tokens]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = ids.dims();
        let [_, hidden] = self.word_embeddings.dims();
        let words = self
            .word_embeddings
            .val()
            .select(0, ids.reshape([b * t]))
            .reshape([b, t, hidden]);
        let positions = self
            .position_embeddings
            .val()
            .narrow(0, 0, t)
            .unsqueeze_dim::<3>(0); // [1, tokens, hidden]
        let types = self
            .token_type_embeddings
            .val()
            .narrow(0, 0, 1)
            .unsqueeze_dim::<3>(0); // [1, 1, hidden]
        let x = add(add(words, positions), types);
        let x = self.encoder.same_norm(&self.embeddings_norm, x);
        let key_padding: Tensor<B, 3, Bool> =
            mask.equal_elem(0).reshape([b, 1, t]).expand([b, t, t]); // [batch, query, key]
        self.encoder.forward(x, Some(key_padding))
    }

    /// sentence-transformers `Pooling(pooling_mode_mean_tokens=True)`: the mean of the hidden
    /// states of real (unpadded) tokens.
    ///
    /// # Shapes
    /// - `hidden`: `[batch, tokens, dim]`; `mask`: `[batch, tokens]`; output `[batch, dim]`
    pub fn mean_pool(hidden: Tensor<B, 3>, mask: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [b, t, d] = hidden.dims();
        let m = mask.float().reshape([b, t, 1]); // [batch, tokens, 1]
        let summed = (hidden * m.clone()).sum_dim(1).reshape([b, d]);
        let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
        summed / count
    }
}
