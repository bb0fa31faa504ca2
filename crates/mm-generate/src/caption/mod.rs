//! Image captioning: a ViT encoder and a BERT decoder with cross-attention, in transformers'
//! `VisionEncoderDecoderModel` layout.
//!
//! - [`decoder`]: the BERT decoder (causal self-attention, cross-attention, key/value cache).
//! - [`model`]: the captioner and its [`crate::decode::StepDecoder`].
//! - [`hf`]: HF `VisionEncoderDecoderModel` folders in and out.

pub mod decoder;
pub mod hf;
pub mod model;

pub use decoder::{BertDecoder, BertDecoderConfig, KvCache};
pub use hf::{CaptionError, LoadedCaptioner, export_hf_captioner, load_hf_captioner};
pub use model::{CaptionStep, Captioner, CaptionerConfig};
