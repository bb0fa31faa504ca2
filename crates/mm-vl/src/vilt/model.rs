//! The single-stream ViLT transformer (transformers `ViltModel`): BERT-style text embeddings
//! and ViT-style patch embeddings, each tagged with a modality-type embedding, concatenated
//! into one sequence for one pre-norm encoder, a final norm and a `tanh` pooler on the first
//! (text `[CLS]`) token.
//!
//! Patches go in row order. transformers samples their order at random, each patch carrying
//! its own position embedding, so everything read at text positions and the pooled output are
//! the same either way. Images must be the configured size (`image_size` square): transformers
//! also interpolates the patch positions to other grids, which this model does not.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Bool, Int, Tensor, backend::Backend};
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_core::nn::fused::add;
use mm_core::nn::{Activation, EncoderKeys, TransformerEncoder, TransformerEncoderConfig};
use mm_text::bert::visit_bert_embeddings;
use mm_vision::patchify;
use serde::{Deserialize, Serialize};

use super::ViltError;

/// Sizes of a ViLT; field names and defaults are transformers `ViltConfig`'s, so an HF
/// `config.json` reads straight into it (unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViltConfig {
    /// Text vocabulary size.
    pub vocab_size: usize,
    /// BERT token types.
    #[serde(default = "mm_core::nn::hf_defaults::two_types")]
    pub type_vocab_size: usize,
    /// Modality types (text 0, image 1).
    #[serde(default = "mm_core::nn::hf_defaults::two_types")]
    pub modality_type_vocab_size: usize,
    /// Longest text in tokens.
    pub max_position_embeddings: usize,
    /// Transformer width.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// MLP activation (`gelu`: exact GELU).
    #[serde(default = "mm_core::nn::hf_defaults::gelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[serde(default = "mm_core::nn::hf_defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Image side length in pixels.
    pub image_size: usize,
    /// Patch side length in pixels.
    pub patch_size: usize,
    /// Image channels.
    #[serde(default = "mm_core::nn::hf_defaults::num_channels")]
    pub num_channels: usize,
    /// Whether the query, key and value projections have biases (only `true` is supported).
    #[serde(default = "mm_core::nn::hf_defaults::yes")]
    pub qkv_bias: bool,
    /// Standard deviation of the initializers.
    #[serde(default = "mm_core::nn::hf_defaults::initializer_range")]
    pub initializer_range: f64,
}

impl ViltConfig {
    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    /// Checks that the sizes fit together.
    pub fn validate(&self) -> Result<(), ViltError> {
        let bad = |r: String| Err(ViltError::Config(r));
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if !self.qkv_bias {
            return bad("qkv_bias = false is not supported".into());
        }
        if self.vocab_size == 0 || self.max_position_embeddings < 2 {
            return bad("a ViLT needs a vocabulary and at least 2 text positions".into());
        }
        if self.modality_type_vocab_size < 2 || self.type_vocab_size == 0 {
            return bad("a ViLT needs 2 modality types and 1 token type".into());
        }
        mm_core::nn::attention::validate_heads(self.hidden_size, self.num_attention_heads)
            .map_err(|e| ViltError::Config(e.0))
    }

    /// Validates, then builds the model on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ViltModel<B>, ViltError> {
        self.validate()?;
        let h = self.hidden_size;
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        };
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let patch_in = self.num_channels * self.patch_size * self.patch_size;
        Ok(ViltModel {
            word_embeddings: normal.init([self.vocab_size, h], device),
            text_positions: normal.init([self.max_position_embeddings, h], device),
            text_token_types: normal.init([self.type_vocab_size, h], device),
            text_norm: norm(),
            patch_embedding: LinearConfig::new(patch_in, h).init(device),
            cls_token: normal.init([1, 1, h], device),
            position_embeddings: normal.init([1, self.num_patches() + 1, h], device),
            modality_types: normal.init([self.modality_type_vocab_size, h], device),
            encoder: TransformerEncoderConfig::pre_norm(
                h,
                self.intermediate_size,
                self.num_attention_heads,
                self.num_hidden_layers,
                self.hidden_act,
                self.layer_norm_eps,
            )
            .init(device)
            .map_err(|e| ViltError::Config(e.0))?,
            layernorm: norm(),
            pooler: LinearConfig::new(h, h).init(device),
            patch_size: self.patch_size,
            image_size: self.image_size,
        })
    }
}

/// transformers `ViltModel` (with its pooler).
#[derive(Module, Debug)]
pub struct ViltModel<B: Backend> {
    word_embeddings: Param<Tensor<B, 2>>,
    text_positions: Param<Tensor<B, 2>>,
    text_token_types: Param<Tensor<B, 2>>,
    text_norm: LayerNorm<B>,
    /// Flattened patch -> hidden (a strided conv with bias in HF).
    patch_embedding: Linear<B>,
    cls_token: Param<Tensor<B, 3>>,
    /// `[1, patches + 1, hidden]`: the class token's position, then the patches'.
    position_embeddings: Param<Tensor<B, 3>>,
    modality_types: Param<Tensor<B, 2>>,
    encoder: TransformerEncoder<B>,
    layernorm: LayerNorm<B>,
    pooler: Linear<B>,
    #[module(skip)]
    patch_size: usize,
    #[module(skip)]
    image_size: usize,
}

/// What [`ViltModel::forward`] gives.
#[derive(Debug, Clone)]
pub struct ViltOutput<B: Backend> {
    /// Final hidden states: the text tokens, then the class token and the patches,
    /// `[batch, tokens + 1 + patches, hidden]`.
    pub sequence: Tensor<B, 3>,
    /// `tanh(W h_0 + b)` of the first token, `[batch, hidden]`.
    pub pooled: Tensor<B, 2>,
    /// Text tokens at the front of `sequence`.
    pub text_tokens: usize,
}

impl<B: Backend> ViltModel<B> {
    /// Checks a batch's sizes against the model: text no longer than its positions, images of
    /// its size, as many images as texts.
    pub fn check_inputs(&self, ids: [usize; 2], pixels: [usize; 4]) -> Result<(), ViltError> {
        let max_text = self.text_positions.dims()[0];
        if ids[1] > max_text || ids[1] == 0 {
            return Err(ViltError::Input(format!(
                "{} text tokens; the model takes 1 to {max_text}",
                ids[1]
            )));
        }
        let s = self.image_size;
        if pixels[2] != s || pixels[3] != s || pixels[1] != self.patch_embedding_channels() {
            return Err(ViltError::Input(format!(
                "images of {}x{}x{}; the model takes {}x{s}x{s} (resize them first)",
                pixels[1],
                pixels[2],
                pixels[3],
                self.patch_embedding_channels()
            )));
        }
        if ids[0] != pixels[0] {
            return Err(ViltError::Input(format!(
                "{} texts but {} images",
                ids[0], pixels[0]
            )));
        }
        Ok(())
    }

    /// The transformer's width.
    pub fn hidden_size(&self) -> usize {
        self.word_embeddings.dims()[1]
    }

    fn patch_embedding_channels(&self) -> usize {
        self.patch_embedding.weight.dims()[0] / (self.patch_size * self.patch_size)
    }

    /// Runs the transformer (sizes as [`Self::check_inputs`] accepts).
    ///
    /// # Shapes
    /// - `ids`, `mask` (1 = token, 0 = padding): `[batch, tokens]`
    /// - `pixels`: `[batch, channels, image_size, image_size]`
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
        pixels: Tensor<B, 4>,
    ) -> ViltOutput<B> {
        let [b, t] = ids.dims();
        let [_, h] = self.word_embeddings.dims();
        let words = self
            .word_embeddings
            .val()
            .select(0, ids.reshape([b * t]))
            .reshape([b, t, h]);
        let positions = self.text_positions.val().narrow(0, 0, t).unsqueeze_dim(0); // [1, tokens, h]
        let token_type = self.text_token_types.val().narrow(0, 0, 1).unsqueeze_dim(0); // [1, 1, h]
        let modality = |i: usize| self.modality_types.val().narrow(0, i, 1).unsqueeze_dim(0); // [1, 1, h]
        let text = add(add(words, positions), token_type);
        let text = add(self.encoder.same_norm(&self.text_norm, text), modality(0));
        let patches = self
            .patch_embedding
            .forward(patchify(pixels, self.patch_size)); // [batch, patches, h]
        let n = patches.dims()[1] + 1;
        let cls = self.cls_token.val().expand([b, 1, h]);
        let image = Tensor::cat(vec![cls, patches], 1); // [batch, 1 + patches, h]
        let image = add(image, self.position_embeddings.val());
        let image = add(image, modality(1));
        let x = Tensor::cat(vec![text, image], 1); // [batch, tokens + 1 + patches, h]
        let total = t + n;
        let padding = Tensor::cat(
            vec![
                mask.equal_elem(0),
                Tensor::<B, 2, Bool>::from_bool(
                    burn::tensor::TensorData::new(vec![false; b * n], [b, n]),
                    &x.device(),
                ),
            ],
            1,
        ); // [batch, total]: true where a key is padding
        let key_padding = padding.reshape([b, 1, total]).expand([b, total, total]);
        let sequence = self.encoder.forward(x, Some(key_padding));
        let sequence = self.encoder.same_norm(&self.layernorm, sequence);
        let first = sequence.clone().narrow(1, 0, 1).reshape([b, h]);
        ViltOutput {
            pooled: tanh(self.pooler.forward(first)),
            sequence,
            text_tokens: t,
        }
    }
}

/// transformers' keys of `ViltModel` (under `vilt.` in the task models).
impl<B: Backend> HfParams<B> for ViltModel<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        let e = format!("{prefix}embeddings.");
        let t = format!("{e}text_embeddings.");
        visit_bert_embeddings(
            &t,
            [
                &mut self.word_embeddings,
                &mut self.text_positions,
                &mut self.text_token_types,
            ],
            &mut self.text_norm,
            v,
        );
        v.visit(
            &format!("{e}token_type_embeddings.weight"),
            Layout::Same,
            &mut self.modality_types,
        );
        v.visit(&format!("{e}cls_token"), Layout::Same, &mut self.cls_token);
        v.visit(
            &format!("{e}position_embeddings"),
            Layout::Same,
            &mut self.position_embeddings,
        );
        let p = format!("{e}patch_embeddings.projection.");
        v.visit(
            &format!("{p}weight"),
            Layout::ConvAsLinear,
            &mut self.patch_embedding.weight,
        );
        if let Some(bias) = self.patch_embedding.bias.as_mut() {
            v.visit(&format!("{p}bias"), Layout::Same, bias);
        }
        self.encoder
            .visit_keys(&format!("{prefix}encoder."), &EncoderKeys::VILT, v);
        self.layernorm.visit_hf(&format!("{prefix}layernorm."), v);
        self.pooler.visit_hf(&format!("{prefix}pooler.dense."), v);
    }
}
