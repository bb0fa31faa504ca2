//! CLIP: an image tower and a text tower trained to agree in one embedding space.
//!
//! Names follow transformers `CLIPModel` (`vision_model`, `text_model`, `logit_scale`), and
//! [`ClipConfig`] mirrors its `config.json` (`text_config`, `vision_config`, `projection_dim`,
//! `logit_scale_init_value`).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::encoder::{Encoder, l2_normalize};
use mm_core::loss::{LogitScale, LogitScaleConfig, contrastive_loss};
use mm_core::nn::ConfigError;
use mm_text::{ClipTextConfig, ClipTextTransformer, TextBatch};
use mm_vision::{ClipVisionConfig, ClipVisionTransformer};

/// Configuration of a [`Clip`] model, shaped like HF `CLIPConfig`.
#[derive(Config, Debug, PartialEq)]
pub struct ClipConfig {
    /// The text tower.
    pub text_config: ClipTextConfig,
    /// The image tower.
    pub vision_config: ClipVisionConfig,
    /// Width of the shared embedding space (both towers project to it).
    pub projection_dim: usize,
    /// Initial log logit scale, `ln(1 / 0.07)`.
    #[config(default = 2.659_260_036_932_778)]
    pub logit_scale_init_value: f64,
}

impl ClipConfig {
    /// `openai/clip-vit-base-patch32`.
    pub fn vit_base_patch32() -> Self {
        Self::new(
            ClipTextConfig::clip_base(),
            ClipVisionConfig::vit_base_patch32(),
            512,
        )
    }

    /// Checks that both towers are valid and project to `projection_dim`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.text_config
            .validate()
            .map_err(|e| ConfigError(format!("text_config: {e}")))?;
        self.vision_config
            .validate()
            .map_err(|e| ConfigError(format!("vision_config: {e}")))?;
        if self.text_config.projection_dim != self.projection_dim
            || self.vision_config.projection_dim != self.projection_dim
        {
            return Err(ConfigError(format!(
                "projection_dim {} must equal text_config.projection_dim {} and vision_config.projection_dim {}",
                self.projection_dim,
                self.text_config.projection_dim,
                self.vision_config.projection_dim
            )));
        }
        Ok(())
    }

    /// Validates, then builds the model on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Clip<B>, ConfigError> {
        self.validate()?;
        Ok(Clip {
            text_model: self.text_config.init(device)?,
            vision_model: self.vision_config.init(device)?,
            logit_scale: LogitScaleConfig::new()
                .with_logit_scale_init_value(self.logit_scale_init_value)
                .init(device),
        })
    }
}

/// The CLIP model.
#[derive(Module, Debug)]
pub struct Clip<B: Backend> {
    /// The text tower (with `text_projection`).
    pub text_model: ClipTextTransformer<B>,
    /// The image tower (with `visual_projection`).
    pub vision_model: ClipVisionTransformer<B>,
    /// The learnable temperature.
    pub logit_scale: LogitScale<B>,
}

impl<B: Backend> Clip<B> {
    /// Projected image features, not normalized (transformers `get_image_features`).
    ///
    /// # Shapes
    /// - `pixels`: `[batch, 3, image_size, image_size]`; output `[batch, projection_dim]`
    pub fn image_features(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        self.vision_model.encode(pixels)
    }

    /// Projected text features, not normalized (transformers `get_text_features`).
    ///
    /// # Shapes
    /// - output `[batch, projection_dim]`
    pub fn text_features(&self, text: TextBatch<B>) -> Tensor<B, 2> {
        self.text_model.encode(text)
    }

    /// Unit-norm image embeddings.
    pub fn encode_image(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        l2_normalize(self.image_features(pixels))
    }

    /// Unit-norm text embeddings.
    pub fn encode_text(&self, text: TextBatch<B>) -> Tensor<B, 2> {
        l2_normalize(self.text_features(text))
    }

    /// The symmetric contrastive loss of a batch of matched pairs (row `i` of each).
    ///
    /// # Shapes
    /// - `pixels`: `[batch, 3, size, size]`; `text`: `batch` rows; output `[1]`
    pub fn loss(&self, pixels: Tensor<B, 4>, text: TextBatch<B>) -> Tensor<B, 1> {
        let image = self.encode_image(pixels);
        let text = self.encode_text(text);
        contrastive_loss(image, text, self.logit_scale.scale())
    }

    /// The model with its logit scale clamped to open_clip's range; call after each step.
    pub fn clamp_logit_scale(mut self) -> Self {
        self.logit_scale = self.logit_scale.clamped();
        self
    }

    /// The context length of the text tower.
    pub fn context_length(&self) -> usize {
        self.text_model.context_length()
    }
}
