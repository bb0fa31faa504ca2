//! `mm-generate`: generation.
//!
//! - [`decode`]: greedy decoding, beam search and sampling behind one step-decoder trait, with
//!   transformers' `generate()` semantics.
//! - [`caption`]: the image captioner (ViT encoder, BERT decoder), HF folders in and out.
#![warn(missing_docs)]

pub mod caption;
pub mod decode;
