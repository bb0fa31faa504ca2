//! `mm-generate`: generation.
//!
//! - [`decode`]: greedy decoding, beam search and sampling behind one step-decoder trait, with
//!   transformers' `generate()` semantics.
#![warn(missing_docs)]

pub mod decode;
