//! `mm-generate`: generation.
//!
//! - [`decode`]: greedy decoding, beam search and sampling behind one step-decoder trait, with
//!   transformers' `generate()` semantics.
//! - [`metrics`]: BLEU-1..4 and CIDEr-D with pycocoevalcap's definitions.
//! - [`caption`]: the image captioner (ViT encoder, BERT decoder), HF folders in and out.
//! - [`diffusion`]: noise schedules, DDPM/DDIM/Euler samplers and the conditional UNet, in
//!   diffusers' folder layout.
#![warn(missing_docs)]

pub mod caption;
pub mod decode;
pub mod diffusion;
pub mod metrics;
