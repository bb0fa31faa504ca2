//! The autoencoder's key table (diffusers' names, which our module tree mirrors) and its
//! folder (see [`crate::diffusion::folder`]).

use std::path::Path;

use burn::tensor::backend::Backend;
use mm_core::hf::{HfParams, ParamVisitor};

use super::config::AutoencoderKLConfig;
use super::model::{AutoencoderKL, VaeAttention, VaeBlock, VaeDecoder, VaeEncoder, VaeMidBlock};
use crate::diffusion::folder::{self, FolderError};
use crate::diffusion::unet::hf::visit_vec;

impl<B: Backend> HfParams<B> for VaeAttention<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.group_norm.visit_hf(&format!("{prefix}group_norm."), v);
        self.to_q.visit_hf(&format!("{prefix}to_q."), v);
        self.to_k.visit_hf(&format!("{prefix}to_k."), v);
        self.to_v.visit_hf(&format!("{prefix}to_v."), v);
        self.to_out.visit_hf(&format!("{prefix}to_out.0."), v);
    }
}

impl<B: Backend> HfParams<B> for VaeMidBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_vec(&mut self.attentions, prefix, "attentions", v);
        visit_vec(&mut self.resnets, prefix, "resnets", v);
    }
}

impl<B: Backend> HfParams<B> for VaeBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_vec(&mut self.resnets, prefix, "resnets", v);
        visit_vec(&mut self.downsamplers, prefix, "downsamplers", v);
        visit_vec(&mut self.upsamplers, prefix, "upsamplers", v);
    }
}

impl<B: Backend> HfParams<B> for VaeEncoder<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv_in.visit_hf(&format!("{prefix}conv_in."), v);
        visit_vec(&mut self.down_blocks, prefix, "down_blocks", v);
        self.mid_block.visit_hf(&format!("{prefix}mid_block."), v);
        self.conv_norm_out
            .visit_hf(&format!("{prefix}conv_norm_out."), v);
        self.conv_out.visit_hf(&format!("{prefix}conv_out."), v);
    }
}

impl<B: Backend> HfParams<B> for VaeDecoder<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv_in.visit_hf(&format!("{prefix}conv_in."), v);
        self.mid_block.visit_hf(&format!("{prefix}mid_block."), v);
        visit_vec(&mut self.up_blocks, prefix, "up_blocks", v);
        self.conv_norm_out
            .visit_hf(&format!("{prefix}conv_norm_out."), v);
        self.conv_out.visit_hf(&format!("{prefix}conv_out."), v);
    }
}

// The table: diffusers `AutoencoderKL`'s module names.
impl<B: Backend> HfParams<B> for AutoencoderKL<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.encoder.visit_hf(&format!("{prefix}encoder."), v);
        self.decoder.visit_hf(&format!("{prefix}decoder."), v);
        if let Some(q) = self.quant_conv.as_mut() {
            q.visit_hf(&format!("{prefix}quant_conv."), v);
        }
        if let Some(p) = self.post_quant_conv.as_mut() {
            p.visit_hf(&format!("{prefix}post_quant_conv."), v);
        }
    }
}

/// Reads a VAE folder's `config.json`.
pub fn read_vae_config(dir: &Path) -> Result<AutoencoderKLConfig, FolderError> {
    folder::read_config(dir, "AutoencoderKL", AutoencoderKLConfig::from_json)
}

/// Loads a diffusers `AutoencoderKL` folder (a pipeline's `vae/`, or one [`save_vae`] wrote);
/// every weight must be present and used.
pub fn load_vae<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(AutoencoderKL<B>, AutoencoderKLConfig), FolderError> {
    let config = read_vae_config(dir)?;
    let mut model = config.init::<B>(device);
    folder::load_weights(dir, &mut model, device)?;
    Ok((model, config))
}

/// Writes a folder that diffusers' `AutoencoderKL.from_pretrained` loads.
pub fn save_vae<B: Backend>(
    model: &AutoencoderKL<B>,
    config: &AutoencoderKLConfig,
    dir: &Path,
) -> Result<(), FolderError> {
    let value = serde_json::to_value(config).expect("configs serialize");
    folder::save(model, value, "AutoencoderKL", dir)
}
