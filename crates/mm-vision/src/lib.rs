//! `mm-vision`: images in, embeddings out.
//!
//! - [`decode`]: read PNG, JPEG, GIF (first frame) and WebP into RGB, compositing transparency
//!   on white and widening grayscale and 16-bit images.
//! - [`preprocess`]: CLIP preprocessing (bicubic shortest-side resize, center crop, mean/std).
//! - [`resample`]: Pillow-exact bicubic resizing.
//! - [`vit`]: the ViT image tower of CLIP.
#![warn(missing_docs)]

pub mod decode;
pub mod preprocess;
pub mod resample;
pub mod vit;

pub use decode::{AlphaMode, ImageError, RgbImage, load_image, load_image_with};
pub use preprocess::{ClipImageProcessor, PixelBatch};
pub use vit::{ClipVisionConfig, ClipVisionTransformer};
