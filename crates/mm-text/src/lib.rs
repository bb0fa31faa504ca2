//! `mm-text`: text in, embeddings out.
//!
//! - [`tokenizer`]: the CLIP BPE tokenizer (HF `tokenizer.json` through the `tokenizers`
//!   crate), truncation and padding to a context length.
//! - [`tokenizer_folder`]: tokenizers from HF folders without `tokenizer.json` (slow-tokenizer
//!   vocabulary files) and `tokenizer_config.json`'s settings.
//! - [`wordpiece`]: BERT's WordPiece tokenizer with `[CLS]`/`[SEP]`/`[MASK]` (ViLT's text side).
//! - [`bert`]: BERT encoders and sentence-transformers mean pooling.
//! - [`sentence`]: sentence-transformers folders (all-MiniLM-L6-v2) loaded and run.
//! - [`clip_text`]: the CLIP text transformer (causal mask, end-of-text pooling, projection).
#![warn(missing_docs)]

pub mod bert;
pub mod clip_text;
pub mod sentence;
pub mod tokenizer;
pub mod tokenizer_folder;
pub mod wordpiece;

pub use clip_text::{ClipTextConfig, ClipTextTransformer, TextBatch};
pub use tokenizer::{ClipTokenizer, TokenBatch, TokenizerError};
pub use tokenizer_folder::TokenizerSettings;
pub use wordpiece::WordPieceTokenizer;
