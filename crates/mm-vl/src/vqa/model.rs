//! The guide's two-tower VQA model on our towers: a ViT gives image tokens, the CLIP text
//! transformer gives question tokens, the question attends over the image tokens through the
//! house's [`CrossModalAttention`] (one or more layers, each with a feed-forward block), and
//! an MLP with dropout classifies the fused question into the answer vocabulary.
//!
//! The guide lets the pooled image attend over the question tokens. Here the question's
//! end-of-text state (which has read the whole question) attends over the image's patch tokens
//! instead: the question picks what to look at, and with one image token (the guide's form)
//! there would be no "where" to attend to. With `blank` pixels the same model is the
//! image-blanked control of the result tables.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, Relu};
use burn::tensor::{Int, Tensor, backend::Backend};
use mm_core::fusion::{CrossModalAttention, CrossModalAttentionConfig};
use mm_core::nn::{Activation, FeedForward, FeedForwardConfig};
use mm_text::{ClipTextConfig, ClipTextTransformer, TextBatch};
use mm_vision::{ClipVisionConfig, ClipVisionTransformer};
use serde::{Deserialize, Serialize};

use super::VqaError;

/// Sizes of a [`VqaModel`] and its answer vocabulary (`config.json` of a model folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaConfig {
    /// The image tower (its projection is unused: the fusion reads its tokens).
    pub vision: ClipVisionConfig,
    /// The question tower; `max_position_embeddings` is the question length in tokens.
    pub text: ClipTextConfig,
    /// Cross-attention layers.
    pub fusion_layers: usize,
    /// Heads of each cross-attention.
    pub fusion_heads: usize,
    /// Hidden width of the answer classifier.
    pub classifier_hidden: usize,
    /// Dropout before the answer layer (the guide uses 0.5; 0.1 trains better here).
    pub dropout: f64,
    /// The answers, in logit order.
    pub answers: Vec<String>,
}

impl VqaConfig {
    /// A small model for `size`-pixel images: ViT with 8-pixel patches, width 128.
    pub fn small(size: usize, answers: Vec<String>) -> Self {
        VqaConfig {
            vision: ClipVisionConfig::new(128, 256, 32, 3, 4, size, 8),
            text: ClipTextConfig::new(128, 256, 32, 2, 4).with_max_position_embeddings(24),
            fusion_layers: 2,
            fusion_heads: 4,
            classifier_hidden: 256,
            dropout: 0.1,
            answers,
        }
    }

    /// Builds the model; errors name sizes that do not fit.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<VqaModel<B>, VqaError> {
        if self.answers.is_empty() || self.fusion_layers == 0 || self.classifier_hidden == 0 {
            return Err(VqaError::Config(
                "a VQA model needs at least one answer, one fusion layer and a classifier width"
                    .into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(VqaError::Config(format!(
                "dropout {} is not in [0, 1)",
                self.dropout
            )));
        }
        let d = self.text.hidden_size;
        let fusion = (0..self.fusion_layers)
            .map(|_| {
                Ok(FusionLayer {
                    norm_query: LayerNormConfig::new(d).init(device),
                    attention: CrossModalAttentionConfig::new(d, self.vision.hidden_size, d)
                        .with_n_heads(self.fusion_heads)
                        .init(device)
                        .map_err(|e| VqaError::Config(e.to_string()))?,
                    norm_ff: LayerNormConfig::new(d).init(device),
                    feed_forward: FeedForwardConfig::new(d, 2 * d)
                        .with_hidden_act(Activation::Gelu)
                        .init(device),
                })
            })
            .collect::<Result<Vec<_>, VqaError>>()?;
        Ok(VqaModel {
            vision: self
                .vision
                .init(device)
                .map_err(|e| VqaError::Config(e.0))?,
            text: self.text.init(device).map_err(|e| VqaError::Config(e.0))?,
            fusion,
            norm_out: LayerNormConfig::new(d).init(device),
            hidden: LinearConfig::new(d, self.classifier_hidden).init(device),
            relu: Relu::new(),
            dropout: DropoutConfig::new(self.dropout).init(),
            answer: LinearConfig::new(self.classifier_hidden, self.answers.len()).init(device),
        })
    }
}

/// One fusion layer: pre-norm cross-attention from the question to the image, then a
/// pre-norm feed-forward block, both residual.
#[derive(Module, Debug)]
pub struct FusionLayer<B: Backend> {
    norm_query: LayerNorm<B>,
    attention: CrossModalAttention<B>,
    norm_ff: LayerNorm<B>,
    feed_forward: FeedForward<B>,
}

/// The two-tower VQA model.
#[derive(Module, Debug)]
pub struct VqaModel<B: Backend> {
    /// Image tower.
    pub vision: ClipVisionTransformer<B>,
    /// Question tower.
    pub text: ClipTextTransformer<B>,
    fusion: Vec<FusionLayer<B>>,
    norm_out: LayerNorm<B>,
    hidden: Linear<B>,
    relu: Relu,
    dropout: Dropout,
    answer: Linear<B>,
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct VqaOutput<B: Backend> {
    /// Answer logits, `[batch, answers]`.
    pub logits: Tensor<B, 2>,
    /// The last fusion layer's attention of the question over the image tokens (class token
    /// first, then the patches in row order), averaged over heads, `[batch, 1 + patches]`.
    pub attention: Tensor<B, 2>,
}

impl<B: Backend> VqaModel<B> {
    /// Answers questions about images.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, 3, size, size]`; `ids`: `[batch, context]`; `eot`: `[batch]`
    pub fn forward(
        &self,
        pixels: Tensor<B, 4>,
        ids: Tensor<B, 2, Int>,
        eot: Tensor<B, 1, Int>,
    ) -> VqaOutput<B> {
        let image = self.vision.forward(pixels).sequence.expect("ViT tokens"); // [batch, 1 + patches, hidden_v]
        let image = self
            .vision
            .encoder
            .same_norm(&self.vision.post_layernorm, image);
        let [b, _] = ids.dims();
        let text = self
            .text
            .forward(TextBatch {
                ids,
                eot_positions: eot.clone(),
            })
            .sequence
            .expect("text tokens"); // [batch, tokens, d]
        let [_, _, d] = text.dims();
        let index = eot.reshape([b, 1, 1]).expand([b, 1, d]);
        let mut x = text.gather(1, index); // [batch, 1, d]: the question's end-of-text state
        let mut weights = None;
        for layer in &self.fusion {
            let (attended, w) = layer
                .attention
                .attend(layer.norm_query.forward(x.clone()), image.clone());
            x = x + attended;
            x = x.clone() + layer.feed_forward.forward(layer.norm_ff.forward(x));
            weights = Some(w);
        }
        let x = self.norm_out.forward(x).reshape([b, d]);
        let h = self
            .dropout
            .forward(self.relu.forward(self.hidden.forward(x)));
        let w = weights.expect("at least one fusion layer"); // [batch, heads, 1, tokens]
        let [_, _, _, n] = w.dims();
        VqaOutput {
            logits: self.answer.forward(h),
            attention: w.mean_dim(1).reshape([b, n]),
        }
    }
}
