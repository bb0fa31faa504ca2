//! The CLIP text tower: token and position embeddings, a causal pre-norm transformer, a final
//! LayerNorm, the hidden state at the end-of-text token, and a projection.
//!
//! Layout and names follow transformers `modeling_clip.py` (`CLIPTextTransformer` plus
//! `CLIPModel.text_projection`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Int, Tensor, backend::Backend};
use mm_core::encoder::{Encoder, EncoderOutput};
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_core::nn::attention::causal_mask;
use mm_core::nn::attention::validate_heads;
use mm_core::nn::{Activation, ConfigError, TransformerEncoder, TransformerEncoderConfig};

/// Configuration of the text tower; field names are HF `CLIPTextConfig`'s.
#[derive(Config, Debug, PartialEq)]
pub struct ClipTextConfig {
    /// Vocabulary size.
    #[config(default = 49408)]
    pub vocab_size: usize,
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
    /// Context length (number of learned positions).
    #[config(default = 77)]
    pub max_position_embeddings: usize,
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

impl ClipTextConfig {
    /// The text tower of `openai/clip-vit-base-patch32`.
    pub fn clip_base() -> Self {
        Self::new(512, 2048, 512, 12, 8)
    }

    /// Checks that the sizes fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_heads(self.hidden_size, self.num_attention_heads)?;
        if self.max_position_embeddings < 2 {
            return Err(ConfigError(
                "max_position_embeddings must be at least 2".into(),
            ));
        }
        Ok(())
    }

    /// Validates, then builds the tower on `device`.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<ClipTextTransformer<B>, ConfigError> {
        self.validate()?;
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        };
        Ok(ClipTextTransformer {
            token_embedding: normal.init([self.vocab_size, self.hidden_size], device),
            position_embedding: normal
                .init([self.max_position_embeddings, self.hidden_size], device),
            encoder: TransformerEncoderConfig::pre_norm(
                self.hidden_size,
                self.intermediate_size,
                self.num_attention_heads,
                self.num_hidden_layers,
                self.hidden_act,
                self.layer_norm_eps,
            )
            .init(device)?,
            final_layer_norm: LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            text_projection: LinearConfig::new(self.hidden_size, self.projection_dim)
                .with_bias(false)
                .init(device),
        })
    }
}

/// Token ids and pooling positions of a batch, on the device.
#[derive(Debug, Clone)]
pub struct TextBatch<B: Backend> {
    /// Token ids, `[batch, tokens]`.
    pub ids: Tensor<B, 2, Int>,
    /// Index of each row's end-of-text token, `[batch]`.
    pub eot_positions: Tensor<B, 1, Int>,
}

/// The CLIP text tower with its projection into the shared embedding space.
#[derive(Module, Debug)]
pub struct ClipTextTransformer<B: Backend> {
    /// Token embedding table, `[vocab, hidden]`.
    pub token_embedding: Param<Tensor<B, 2>>,
    /// Learned positions, `[context, hidden]`.
    pub position_embedding: Param<Tensor<B, 2>>,
    /// The causal transformer.
    pub encoder: TransformerEncoder<B>,
    /// LayerNorm after the last layer.
    pub final_layer_norm: LayerNorm<B>,
    /// Projection into the shared space (no bias).
    pub text_projection: Linear<B>,
}

impl<B: Backend> ClipTextTransformer<B> {
    /// Runs the tower (transformers `CLIPTextTransformer.forward` + `text_projection`).
    ///
    /// # Shapes
    /// - `ids`: `[batch, tokens]` with `tokens <= max_position_embeddings`
    /// - `eot_positions`: `[batch]`
    /// - output: pooled `[batch, projection_dim]`, sequence `[batch, tokens, hidden]`
    pub fn forward(&self, batch: TextBatch<B>) -> EncoderOutput<B> {
        let [b, t] = batch.ids.dims();
        let [_, hidden] = self.token_embedding.dims();
        let device = batch.ids.device();
        let tokens = self
            .token_embedding
            .val()
            .select(0, batch.ids.reshape([b * t]))
            .reshape([b, t, hidden]); // [batch, tokens, hidden]
        let positions = self
            .position_embedding
            .val()
            .narrow(0, 0, t)
            .unsqueeze_dim::<3>(0); // [1, tokens, hidden]
        let x = self.encoder.forward(
            mm_core::nn::fused::add(tokens, positions),
            Some(causal_mask::<B>(t, &device)),
        );
        let sequence = self.encoder.same_norm(&self.final_layer_norm, x); // [batch, tokens, hidden]
        let index = batch
            .eot_positions
            .reshape([b, 1, 1])
            .expand([b, 1, hidden]); // [batch, 1, hidden]
        let pooled = sequence.clone().gather(1, index).reshape([b, hidden]); // [batch, hidden]
        EncoderOutput {
            pooled: self.text_projection.forward(pooled),
            sequence: Some(sequence),
        }
    }

    /// The context length this tower accepts.
    pub fn context_length(&self) -> usize {
        self.position_embedding.dims()[0]
    }
}

/// The HF key table (transformers `CLIPModel` / `CLIPTextModelWithProjection`): the tower
/// under `{prefix}text_model.`, the projection at `{prefix}text_projection.weight`.
impl<B: Backend> HfParams<B> for ClipTextTransformer<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        let p = format!("{prefix}text_model.");
        v.visit(
            &format!("{p}embeddings.token_embedding.weight"),
            Layout::Same,
            &mut self.token_embedding,
        );
        v.visit(
            &format!("{p}embeddings.position_embedding.weight"),
            Layout::Same,
            &mut self.position_embedding,
        );
        self.encoder.visit_hf(&format!("{p}encoder."), v);
        self.final_layer_norm
            .visit_hf(&format!("{p}final_layer_norm."), v);
        self.text_projection
            .visit_hf(&format!("{prefix}text_projection."), v);
    }
}

impl<B: Backend> Encoder<B> for ClipTextTransformer<B> {
    type Input = TextBatch<B>;

    fn encode_full(&self, input: TextBatch<B>) -> EncoderOutput<B> {
        self.forward(input)
    }

    fn output_dim(&self) -> usize {
        self.text_projection.weight.dims()[1]
    }
}
