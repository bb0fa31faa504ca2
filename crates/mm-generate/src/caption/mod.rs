//! Image captioning: a ViT encoder and a BERT decoder with cross-attention, in transformers'
//! `VisionEncoderDecoderModel` layout.
//!
//! - [`decoder`]: the BERT decoder (causal self-attention, cross-attention, key/value cache).
//! - [`model`]: the captioner and its [`crate::decode::StepDecoder`].
//! - [`hf`]: HF `VisionEncoderDecoderModel` folders in and out.
//! - [`data`]: captioned images from manifests, tagged by source.
//! - [`train`]: teacher-forced training through the house loop.
//! - [`train_config`]: the settings of a captioning run and their defaults.
//! - [`scst`]: the self-critical phase after it (CIDEr-D as the reward).
//! - [`sample`]: many captions sampled at once (the self-critical phase's decoder).
//! - [`eval`]: greedy vs beam 3 vs beam 5 on held-out images (BLEU, CIDEr-D, exact match).
//! - [`select`]: beam search's `length_penalty` chosen on validation images.

pub mod batches;
pub mod data;
pub mod decoder;
pub mod eval;
pub mod hf;
pub mod model;
pub mod sample;
pub mod scst;
pub mod select;
pub mod train;
pub mod train_config;

pub use data::{CaptionSet, CaptionSource, vit_processor};
pub use decoder::{BertDecoder, BertDecoderConfig, KvCache};
pub use eval::{CaptionReport, evaluate_captioner};
pub use hf::{CaptionError, LoadedCaptioner, export_hf_captioner, load_hf_captioner};
pub use model::{CaptionStep, Captioner, CaptionerConfig};
pub use scst::{ScstConfig, self_critical};
pub use select::{PenaltyChoice, PenaltyScore, choose_length_penalty};
pub use train::{CaptionTrainConfig, TrainedCaptioner, train_captioner};
