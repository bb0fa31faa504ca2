//! diffusers' `UNet2DConditionModel`: config, layers, stages, the model and its folder.

pub mod attention;
pub mod blocks;
pub mod config;
pub mod hf;
pub mod model;
pub mod resnet;

pub use config::UNet2DConditionConfig;
pub use hf::{load_unet, read_unet_config, save_unet};
pub use model::UNet2DConditionModel;
