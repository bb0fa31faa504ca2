//! `mm-vision`: images in, embeddings out.
//!
//! - [`decode`]: read PNG, JPEG, GIF (first frame) and WebP into RGB, compositing transparency
//!   on white and widening grayscale and 16-bit images.
//! - [`preprocess`]: CLIP preprocessing (shortest-side resize, center crop, rescale, mean/std).
//! - [`processor_config`]: preprocessing settings from HF folders, in every form they come in.
//! - [`resample`]: Pillow-exact resizing (bicubic and Pillow's other filters).
//! - [`vit`]: the ViT image tower of CLIP.
//! - [`hf_vit`]: transformers' plain ViT (`ViTModel`), the encoder of image captioners.
#![warn(missing_docs)]

pub mod decode;
pub mod hf_vit;
pub mod preprocess;
pub mod processor_config;
pub mod resample;
pub mod resnet;
pub mod tfjs;
pub mod vit;

pub use decode::{AlphaMode, ImageError, RgbImage, load_image, load_image_with};
pub use hf_vit::{ViTConfig, ViTModel};
pub use preprocess::{ClipImageProcessor, CropSize, PixelBatch, SizeSpec};
pub use processor_config::{
    InvalidSetting, ProcessorConfigError, load_processor_config, processor_from_hf,
};
pub use resample::Filter;
pub use resnet::{ResNet, ResNetConfig};
pub use vit::{ClipVisionConfig, ClipVisionTransformer, patchify};
