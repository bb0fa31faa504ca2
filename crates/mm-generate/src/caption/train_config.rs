//! What a captioning run is made of: [`CaptionTrainConfig`], with the default captioner (ViT
//! 64x64 in 8x8 patches, width 128, 4 layers; BERT decoder width 128, 3 layers, 24
//! positions) and transformers' training defaults (no label smoothing, every source drawn
//! equally often).

use std::collections::BTreeMap;

use mm_vision::ViTConfig;
use mm_vl::augment::ColourAugment;
use serde::{Deserialize, Serialize};

use super::decoder::BertDecoderConfig;
use super::model::CaptionerConfig;
use super::scst::ScstConfig;

/// Everything a captioning run is made of (`final/mm_train_config.json` holds it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionTrainConfig {
    /// The model; the decoder's vocabulary and the special tokens are set from the tokenizer.
    pub model: CaptionerConfig,
    /// Images per step.
    pub batch: usize,
    /// Steps.
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Largest random shift of a training image, in pixels.
    pub max_shift: u32,
    /// Colour and flip augmentation of the teacher-forced phase's training images (default
    /// off; the self-critical phase only shifts). Flips and grayscale change what some
    /// captions say ("a red circle"); brightness, contrast and saturation jitter does not.
    #[serde(default)]
    pub augment: ColourAugment,
    /// How often each training source is drawn, by name, relative to the others (absent: 1,
    /// every source equally often; 0 leaves a source out), in both phases.
    #[serde(default)]
    pub source_weights: BTreeMap<String, f64>,
    /// Seed of weights and batches.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Fraction of each training source held out to choose beam search's `length_penalty`
    /// (0: no validation set, transformers' default 1.0 stays).
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// At most this many validation images per source.
    #[serde(default = "default_validation_max")]
    pub validation_max_per_source: usize,
    /// The `length_penalty` values tried on the validation images, default first.
    #[serde(default = "default_length_penalties")]
    pub length_penalties: Vec<f32>,
    /// Label smoothing of the next-token loss (transformers' `label_smoothing_factor`): the
    /// target puts `1 - x` on the right token and spreads `x` evenly over the vocabulary.
    #[serde(default)]
    pub label_smoothing: f32,
    /// The self-critical phase after teacher forcing (`scst.steps` 0: none).
    #[serde(default)]
    pub scst: ScstConfig,
    /// Long-run decay of an exponential moving average of the weights (0: none). With it,
    /// the average (diffusers' warm-up, [`mm_core::train::ema_decay`]) is what the
    /// self-critical phase starts from, what validation chooses the penalty for, and what
    /// `final/` holds. Left out of the run folder's settings when 0, so runs from before it
    /// resume.
    #[serde(default)]
    pub ema_decay: f64,
    /// Word dropout of the teacher-forced decoder's input (Bowman et al., 2016): each caption
    /// token fed to the decoder (not `[CLS]`, not padding) becomes `[MASK]` with this
    /// probability, so predicting the next word leans on the image more and on the words
    /// before it less; the targets are unchanged (0: none). Left out of the run folder's
    /// settings when 0, so runs from before it resume.
    #[serde(default)]
    pub word_dropout: f32,
}

fn default_validation_fraction() -> f64 {
    0.1
}

fn default_validation_max() -> usize {
    100
}

fn default_length_penalties() -> Vec<f32> {
    vec![1.0, 0.5, 1.5, 2.0, 3.0]
}

impl Default for CaptionTrainConfig {
    fn default() -> Self {
        let encoder = ViTConfig {
            image_size: 64,
            patch_size: 8,
            num_channels: 3,
            hidden_size: 128,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            intermediate_size: 512,
            hidden_act: mm_core::nn::Activation::Gelu,
            layer_norm_eps: 1e-12,
            qkv_bias: true,
            initializer_range: 0.02,
        };
        let decoder = BertDecoderConfig {
            vocab_size: 0,
            hidden_size: 128,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            intermediate_size: 512,
            max_position_embeddings: 24,
            type_vocab_size: 2,
            hidden_act: mm_core::nn::Activation::Gelu,
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
            hidden_dropout_prob: 0.0,
        };
        Self {
            model: CaptionerConfig {
                encoder,
                decoder,
                decoder_start_token_id: 0,
                eos_token_id: 0,
                pad_token_id: 0,
            },
            batch: 48,
            steps: 5000,
            lr: 5e-4,
            warmup: 200,
            weight_decay: 0.05,
            max_shift: 3,
            augment: ColourAugment::default(),
            source_weights: BTreeMap::new(),
            seed: 20,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
            validation_fraction: default_validation_fraction(),
            validation_max_per_source: default_validation_max(),
            length_penalties: default_length_penalties(),
            label_smoothing: 0.0,
            scst: ScstConfig::default(),
            ema_decay: 0.0,
            word_dropout: 0.0,
        }
    }
}
