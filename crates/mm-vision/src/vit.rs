//! The ViT image tower of CLIP: patch embedding, class token, learned positions, pre-norm
//! transformer, pooled class token, projection.
//!
//! Layout and names follow transformers `modeling_clip.py` (`CLIPVisionTransformer` plus
//! `CLIPModel.visual_projection`), so HF checkpoints map onto it by a plain table.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Tensor, backend::Backend};
use mm_core::encoder::{Encoder, EncoderOutput};
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_core::nn::attention::validate_heads;
use mm_core::nn::{Activation, ConfigError, TransformerEncoder, TransformerEncoderConfig};

/// Configuration of the vision tower; field names are HF `CLIPVisionConfig`'s.
#[derive(Config, Debug, PartialEq)]
pub struct ClipVisionConfig {
    /// Transformer width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Output embedding width (CLIP's shared space).
    pub projection_dim: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Input side length in pixels.
    pub image_size: usize,
    /// Patch side length in pixels.
    pub patch_size: usize,
    /// Input channels.
    #[config(default = 3)]
    pub num_channels: usize,
    /// MLP activation.
    #[config(default = "Activation::QuickGelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Standard deviation of the embedding initializers.
    #[config(default = 0.02)]
    pub initializer_range: f64,
}

impl ClipVisionConfig {
    /// The vision tower of `openai/clip-vit-base-patch32`.
    pub fn vit_base_patch32() -> Self {
        Self::new(768, 3072, 512, 12, 12, 224, 32)
    }

    /// Number of patches per image.
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
        validate_heads(self.hidden_size, self.num_attention_heads)?;
        Ok(())
    }

    /// Validates, then builds the tower on `device`.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<ClipVisionTransformer<B>, ConfigError> {
        self.validate()?;
        let std = self.initializer_range;
        let normal = Initializer::Normal { mean: 0.0, std };
        let patch_dim = self.num_channels * self.patch_size * self.patch_size;
        let norm = || {
            LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        Ok(ClipVisionTransformer {
            patch_embedding: LinearConfig::new(patch_dim, self.hidden_size)
                .with_bias(false)
                .init(device),
            class_embedding: normal.init([self.hidden_size], device),
            position_embedding: normal.init([self.num_patches() + 1, self.hidden_size], device),
            pre_layrnorm: norm(),
            encoder: TransformerEncoderConfig::pre_norm(
                self.hidden_size,
                self.intermediate_size,
                self.num_attention_heads,
                self.num_hidden_layers,
                self.hidden_act,
                self.layer_norm_eps,
            )
            .init(device)?,
            post_layernorm: norm(),
            visual_projection: LinearConfig::new(self.hidden_size, self.projection_dim)
                .with_bias(false)
                .init(device),
            patch_size: self.patch_size,
        })
    }
}

/// The CLIP vision tower with its projection into the shared embedding space.
#[derive(Module, Debug)]
pub struct ClipVisionTransformer<B: Backend> {
    /// Flattened `[channels * patch * patch] -> hidden` patch projection (a strided conv in HF).
    pub patch_embedding: Linear<B>,
    /// The learned class token, `[hidden]`.
    pub class_embedding: Param<Tensor<B, 1>>,
    /// Learned positions, `[patches + 1, hidden]`.
    pub position_embedding: Param<Tensor<B, 2>>,
    /// LayerNorm before the transformer (HF spells it `pre_layrnorm`).
    pub pre_layrnorm: LayerNorm<B>,
    /// The transformer.
    pub encoder: TransformerEncoder<B>,
    /// LayerNorm on the pooled class token.
    pub post_layernorm: LayerNorm<B>,
    /// Projection into the shared space (no bias).
    pub visual_projection: Linear<B>,
    /// Patch side length.
    pub patch_size: usize,
}

impl<B: Backend> ClipVisionTransformer<B> {
    /// Splits images into flattened patches in `(channel, row, column)` order, matching the
    /// weight layout of a `Conv2d(kernel = stride = patch)`.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]`
    /// - output: `[batch, patches, channels * patch * patch]`
    pub fn patchify(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        patchify(pixels, self.patch_size)
    }

    /// Runs the tower (transformers `CLIPVisionTransformer.forward` + `visual_projection`).
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, image_size, image_size]`
    /// - output: pooled `[batch, projection_dim]`, sequence `[batch, patches + 1, hidden]`
    pub fn forward(&self, pixels: Tensor<B, 4>) -> EncoderOutput<B> {
        let [b, _, _, _] = pixels.dims();
        let patches = self.patch_embedding.forward(self.patchify(pixels)); // [batch, patches, hidden]
        let hidden = self.class_embedding.dims()[0];
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, hidden])
            .expand([b, 1, hidden]); // [batch, 1, hidden]
        let x = Tensor::cat(vec![cls, patches], 1); // [batch, tokens, hidden]
        let x = mm_core::nn::fused::add(x, self.position_embedding.val().unsqueeze_dim::<3>(0));
        let x = self.encoder.same_norm(&self.pre_layrnorm, x);
        let sequence = self.encoder.forward(x, None); // [batch, tokens, hidden]
        let pooled = sequence.clone().narrow(1, 0, 1).reshape([b, hidden]); // [batch, hidden]
        let pooled = self
            .visual_projection
            .forward(self.encoder.same_norm(&self.post_layernorm, pooled));
        EncoderOutput {
            pooled,
            sequence: Some(sequence),
        }
    }
}

/// Splits images into flattened `p x p` patches in `(channel, row, column)` order, patches in
/// row order: the layout of a `Conv2d(kernel = stride = p)` weight seen as a linear layer.
///
/// # Shapes
/// - `pixels`: `[batch, channels, height, width]`, sides multiples of `p`
/// - output: `[batch, (height / p) * (width / p), channels * p * p]`
pub fn patchify<B: Backend>(pixels: Tensor<B, 4>, p: usize) -> Tensor<B, 3> {
    let [b, c, h, w] = pixels.dims();
    let (gh, gw) = (h / p, w / p);
    pixels
        .reshape([b, c, gh, p, gw, p]) // [batch, channels, grid_h, p, grid_w, p]
        .permute([0, 2, 4, 1, 3, 5]) // [batch, grid_h, grid_w, channels, p, p]
        .reshape([b, gh * gw, c * p * p])
}

/// The HF key table (transformers `CLIPModel` / `CLIPVisionModelWithProjection`): the tower
/// under `{prefix}vision_model.`, the projection at `{prefix}visual_projection.weight`.
impl<B: Backend> HfParams<B> for ClipVisionTransformer<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        let p = format!("{prefix}vision_model.");
        v.visit(
            &format!("{p}embeddings.class_embedding"),
            Layout::Same,
            &mut self.class_embedding,
        );
        v.visit(
            &format!("{p}embeddings.patch_embedding.weight"),
            Layout::ConvAsLinear,
            &mut self.patch_embedding.weight,
        );
        v.visit(
            &format!("{p}embeddings.position_embedding.weight"),
            Layout::Same,
            &mut self.position_embedding,
        );
        self.pre_layrnorm.visit_hf(&format!("{p}pre_layrnorm."), v);
        self.encoder.visit_hf(&format!("{p}encoder."), v);
        self.post_layernorm
            .visit_hf(&format!("{p}post_layernorm."), v);
        self.visual_projection
            .visit_hf(&format!("{prefix}visual_projection."), v);
    }
}

impl<B: Backend> Encoder<B> for ClipVisionTransformer<B> {
    type Input = Tensor<B, 4>;

    fn encode_full(&self, input: Tensor<B, 4>) -> EncoderOutput<B> {
        self.forward(input)
    }

    fn output_dim(&self) -> usize {
        self.visual_projection.weight.dims()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    #[test]
    fn shapes_follow_the_config() {
        let device = Default::default();
        let cfg = ClipVisionConfig::new(32, 64, 16, 2, 4, 16, 4);
        let model = cfg.init::<B>(&device).unwrap();
        let pixels = Tensor::<B, 4>::ones([3, 3, 16, 16], &device);
        let out = model.forward(pixels);
        assert_eq!(out.pooled.dims(), [3, 16]);
        assert_eq!(out.sequence.unwrap().dims(), [3, 17, 32]);
        assert_eq!(model.output_dim(), 16);
    }

    #[test]
    fn patchify_orders_channel_row_column() {
        let device = Default::default();
        let model = ClipVisionConfig::new(8, 8, 8, 1, 1, 4, 2)
            .init::<B>(&device)
            .unwrap();
        // One image, 3 channels, 4x4; value = c*100 + y*10 + x.
        let data: Vec<f32> = (0..3)
            .flat_map(|c| {
                (0..4).flat_map(move |y| (0..4).map(move |x| (c * 100 + y * 10 + x) as f32))
            })
            .collect();
        let pixels =
            Tensor::<B, 4>::from_data(burn::tensor::TensorData::new(data, [1, 3, 4, 4]), &device);
        let patches = model.patchify(pixels).into_data().to_vec::<f32>().unwrap();
        // Second patch (row 0, column 1): channel 0 rows 0-1, columns 2-3 first.
        assert_eq!(&patches[12..16], &[2.0, 3.0, 12.0, 13.0]);
        assert_eq!(patches[16], 102.0);
    }

    #[test]
    fn bad_sizes_are_rejected() {
        assert!(
            ClipVisionConfig::new(32, 64, 16, 2, 4, 15, 4)
                .validate()
                .is_err()
        );
        assert!(
            ClipVisionConfig::new(30, 64, 16, 2, 4, 16, 4)
                .validate()
                .is_err()
        );
        assert!(ClipVisionConfig::vit_base_patch32().validate().is_ok());
    }
}
