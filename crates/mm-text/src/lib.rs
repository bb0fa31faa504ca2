//! `mm-text`: text in, embeddings out.
//!
//! - [`tokenizer`]: the CLIP BPE tokenizer (HF `tokenizer.json` through the `tokenizers`
//!   crate), truncation and padding to a context length.
//! - [`clip_text`]: the CLIP text transformer (causal mask, end-of-text pooling, projection).
#![warn(missing_docs)]

pub mod clip_text;
pub mod tokenizer;

pub use clip_text::{ClipTextConfig, ClipTextTransformer, TextBatch};
pub use tokenizer::{ClipTokenizer, TokenBatch, TokenizerError};
