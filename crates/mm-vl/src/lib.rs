//! `mm-vl`: vision-language models.
//!
//! - [`clip`]: the CLIP model joining `mm-vision`'s ViT and `mm-text`'s text transformer.
//! - [`zeroshot`]: zero-shot classification with prompt ensembles.
//! - [`data`]: image-caption datasets from JSONL manifests; [`augment`]: flips, grayscale and
//!   colour jitter of training images.
//! - [`train`]: contrastive training with atomic checkpoints and exact resume.
//! - [`eval`]: retrieval Recall@K and zero-shot accuracy on a test set.
//! - [`transfer`] and [`transfer_eval`]: zero-shot transfer to the Tux Paint stamps, with a
//!   template ablation.
//! - [`info`]: the InfoNCE lower bound on `I(image; caption)` of a trained CLIP.
//! - [`hf`]: HuggingFace `CLIPModel` folders in and out.
//! - [`pipeline`]: embed files and texts, classify an image (the guide's production pipeline).
//! - [`checkpoint`]: model folders and training checkpoints.
//! - [`vqa`]: visual question answering (two towers, cross-attention fusion).
//! - [`vilt`]: ViLT, the single-stream transformer with its ITM, MLM and VQA heads.
//! - [`datasets`]: fetching and converting the real datasets the project trains on;
//!   [`openmoji`]: the OpenMoji drawings of the same emoji, rendered from SVG ([`svg`]);
//!   [`gcompris`]: GCompris' drawings of instruments and animals with their sounds.
#![warn(missing_docs)]

pub mod augment;
pub mod checkpoint;
pub mod clip;
pub mod data;
pub mod datasets;
pub mod eval;
pub mod gcompris;
pub mod hf;
pub mod info;
pub mod openmoji;
pub mod pipeline;
pub mod svg;
pub mod train;
pub mod transfer;
pub mod transfer_eval;
pub mod vilt;
pub mod vqa;
pub mod zeroshot;

pub use clip::{Clip, ClipConfig};
