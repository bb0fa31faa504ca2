//! transformers' plain ViT (`ViTModel`): the image encoder of `VisionEncoderDecoderModel`
//! captioners. Patch embedding (a strided conv), class token, learned positions, pre-norm
//! encoder, final norm, and the `tanh` pooler on the class token that transformers keeps in
//! the weights (decoders read the hidden states, not the pooled output).
//!
//! Images must be `image_size` square (transformers can interpolate positions to other grids;
//! this model does not).

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_core::nn::attention::validate_heads;
use mm_core::nn::{
    Activation, ConfigError, EncoderKeys, TransformerEncoder, TransformerEncoderConfig,
};
use serde::{Deserialize, Serialize};

use crate::vit::patchify;

/// Sizes of a ViT; names and defaults are transformers `ViTConfig`'s, so the `encoder` part of
/// an HF `config.json` reads straight into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViTConfig {
    /// Image side length in pixels.
    pub image_size: usize,
    /// Patch side length in pixels.
    pub patch_size: usize,
    /// Image channels.
    #[serde(default = "mm_core::nn::hf_defaults::num_channels")]
    pub num_channels: usize,
    /// Width.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// MLP activation.
    #[serde(default = "mm_core::nn::hf_defaults::gelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[serde(default = "mm_core::nn::hf_defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Whether q, k, v have biases (only `true` is supported).
    #[serde(default = "mm_core::nn::hf_defaults::yes")]
    pub qkv_bias: bool,
    /// Standard deviation of the initializers.
    #[serde(default = "mm_core::nn::hf_defaults::initializer_range")]
    pub initializer_range: f64,
}

impl ViTConfig {
    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    /// Checks that the sizes fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return Err(ConfigError(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            )));
        }
        if !self.qkv_bias {
            return Err(ConfigError("qkv_bias = false is not supported".into()));
        }
        validate_heads(self.hidden_size, self.num_attention_heads)
    }

    /// Validates, then builds the model (with its pooler) on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ViTModel<B>, ConfigError> {
        self.validate()?;
        let h = self.hidden_size;
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        };
        let patch_in = self.num_channels * self.patch_size * self.patch_size;
        Ok(ViTModel {
            patch_embedding: LinearConfig::new(patch_in, h).init(device),
            cls_token: normal.init([1, 1, h], device),
            position_embeddings: normal.init([1, self.num_patches() + 1, h], device),
            encoder: TransformerEncoderConfig::pre_norm(
                h,
                self.intermediate_size,
                self.num_attention_heads,
                self.num_hidden_layers,
                self.hidden_act,
                self.layer_norm_eps,
            )
            .init(device)?,
            layernorm: LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            pooler: LinearConfig::new(h, h).init(device),
            patch_size: self.patch_size,
            image_size: self.image_size,
            num_channels: self.num_channels,
        })
    }
}

/// transformers `ViTModel`.
#[derive(Module, Debug)]
pub struct ViTModel<B: Backend> {
    /// Flattened patch -> hidden (a strided conv with bias in HF).
    pub patch_embedding: Linear<B>,
    /// The class token, `[1, 1, hidden]`.
    pub cls_token: Param<Tensor<B, 3>>,
    /// `[1, patches + 1, hidden]`: the class token's position, then the patches'.
    pub position_embeddings: Param<Tensor<B, 3>>,
    /// Pre-norm layers (ViT's names, [`EncoderKeys::VILT`]).
    pub encoder: TransformerEncoder<B>,
    /// Final norm.
    pub layernorm: LayerNorm<B>,
    /// `tanh(W h_0 + b)` pooler.
    pub pooler: Linear<B>,
    #[module(skip)]
    patch_size: usize,
    #[module(skip)]
    image_size: usize,
    #[module(skip)]
    num_channels: usize,
}

impl<B: Backend> ViTModel<B> {
    /// The `[channels, size, size]` an image must have.
    pub fn input_shape(&self) -> [usize; 3] {
        [self.num_channels, self.image_size, self.image_size]
    }

    /// The encoder's width.
    pub fn hidden_size(&self) -> usize {
        self.layernorm.gamma.dims()[0]
    }

    /// Checks `[batch, channels, height, width]` against the model.
    pub fn check_pixels(&self, dims: [usize; 4]) -> Result<(), ConfigError> {
        let [c, s, _] = self.input_shape();
        if dims[1] != c || dims[2] != s || dims[3] != s || dims[0] == 0 {
            return Err(ConfigError(format!(
                "images of {}x{}x{} (batch {}); the model takes {c}x{s}x{s} (resize them first)",
                dims[1], dims[2], dims[3], dims[0]
            )));
        }
        Ok(())
    }

    /// The last hidden state (after the final norm): the class token, then the patches.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, image_size, image_size]`
    /// - output: `[batch, 1 + patches, hidden]`
    pub fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        let b = pixels.dims()[0];
        let h = self.hidden_size();
        let patches = self
            .patch_embedding
            .forward(patchify(pixels, self.patch_size)); // [batch, patches, h]
        let cls = self.cls_token.val().expand([b, 1, h]);
        let x = Tensor::cat(vec![cls, patches], 1) + self.position_embeddings.val();
        self.layernorm.forward(self.encoder.forward(x, None))
    }

    /// The pooled output of a last hidden state: `tanh` of the pooler on the class token.
    ///
    /// # Shapes
    /// - `hidden`: `[batch, tokens, hidden]`; output `[batch, hidden]`
    pub fn pool(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, _, h] = hidden.dims();
        tanh(self.pooler.forward(hidden.narrow(1, 0, 1).reshape([b, h])))
    }
}

/// transformers' keys of `ViTModel` (under `encoder.` in a `VisionEncoderDecoderModel`).
impl<B: Backend> HfParams<B> for ViTModel<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        let e = format!("{prefix}embeddings.");
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
