//! `mm-vision`: images in, embeddings out.
//!
//! - [`decode`]: read PNG, JPEG, GIF (first frame) and WebP into RGB, compositing transparency
//!   on white and widening grayscale and 16-bit images.
//! - [`preprocess`]: CLIP preprocessing (bicubic shortest-side resize, center crop, mean/std).
//! - [`vit`]: the ViT image tower of CLIP.
#![warn(missing_docs)]

pub mod decode;
pub mod preprocess;
pub mod vit;

pub use decode::{ImageError, RgbImage, load_image};
pub use preprocess::{ClipImageProcessor, PixelBatch};
pub use vit::{ClipVisionConfig, ClipVisionTransformer};
