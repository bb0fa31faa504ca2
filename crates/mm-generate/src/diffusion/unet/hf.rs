//! The UNet's key table (diffusers' parameter names, which our module tree mirrors) and its
//! folder (see [`crate::diffusion::folder`]).

use std::path::Path;

use burn::tensor::backend::Backend;
use mm_core::hf::{HfParams, ParamVisitor};

use super::attention::{
    BasicTransformerBlock, CrossAttention, GegluFeedForward, Projection, Transformer2D,
};
use crate::diffusion::folder::{self, FolderError};

use super::blocks::{DownBlock, MidBlock, UpBlock};
use super::config::UNet2DConditionConfig;
use super::model::UNet2DConditionModel;
use super::resnet::{Downsample2D, ResnetBlock2D, TimestepEmbedding, Upsample2D};

/// Visits `items` under `{prefix}{name}.{i}.`, as PyTorch names a `ModuleList`'s children.
pub fn visit_vec<B: Backend, M: HfParams<B>>(
    items: &mut [M],
    prefix: &str,
    name: &str,
    v: &mut dyn ParamVisitor<B>,
) {
    for (i, item) in items.iter_mut().enumerate() {
        item.visit_hf(&format!("{prefix}{name}.{i}."), v);
    }
}

impl<B: Backend> HfParams<B> for TimestepEmbedding<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.linear_1.visit_hf(&format!("{prefix}linear_1."), v);
        self.linear_2.visit_hf(&format!("{prefix}linear_2."), v);
    }
}

impl<B: Backend> HfParams<B> for ResnetBlock2D<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.norm1.visit_hf(&format!("{prefix}norm1."), v);
        self.conv1.visit_hf(&format!("{prefix}conv1."), v);
        if let Some(t) = self.time_emb_proj.as_mut() {
            t.visit_hf(&format!("{prefix}time_emb_proj."), v);
        }
        self.norm2.visit_hf(&format!("{prefix}norm2."), v);
        self.conv2.visit_hf(&format!("{prefix}conv2."), v);
        if let Some(c) = self.conv_shortcut.as_mut() {
            c.visit_hf(&format!("{prefix}conv_shortcut."), v);
        }
    }
}

impl<B: Backend> HfParams<B> for Downsample2D<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv.visit_hf(&format!("{prefix}conv."), v);
    }
}

impl<B: Backend> HfParams<B> for Upsample2D<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv.visit_hf(&format!("{prefix}conv."), v);
    }
}

impl<B: Backend> HfParams<B> for CrossAttention<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.to_q.visit_hf(&format!("{prefix}to_q."), v);
        self.to_k.visit_hf(&format!("{prefix}to_k."), v);
        self.to_v.visit_hf(&format!("{prefix}to_v."), v);
        self.to_out.visit_hf(&format!("{prefix}to_out.0."), v);
    }
}

impl<B: Backend> HfParams<B> for GegluFeedForward<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.proj.visit_hf(&format!("{prefix}net.0.proj."), v);
        self.out.visit_hf(&format!("{prefix}net.2."), v);
    }
}

impl<B: Backend> HfParams<B> for BasicTransformerBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.norm1.visit_hf(&format!("{prefix}norm1."), v);
        self.attn1.visit_hf(&format!("{prefix}attn1."), v);
        self.norm2.visit_hf(&format!("{prefix}norm2."), v);
        self.attn2.visit_hf(&format!("{prefix}attn2."), v);
        self.norm3.visit_hf(&format!("{prefix}norm3."), v);
        self.ff.visit_hf(&format!("{prefix}ff."), v);
    }
}

impl<B: Backend> HfParams<B> for Projection<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        match self {
            Projection::Conv(c) => c.visit_hf(prefix, v),
            Projection::Linear(l) => l.visit_hf(prefix, v),
        }
    }
}

impl<B: Backend> HfParams<B> for Transformer2D<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.norm.visit_hf(&format!("{prefix}norm."), v);
        self.proj_in.visit_hf(&format!("{prefix}proj_in."), v);
        visit_vec(
            &mut self.transformer_blocks,
            prefix,
            "transformer_blocks",
            v,
        );
        self.proj_out.visit_hf(&format!("{prefix}proj_out."), v);
    }
}

impl<B: Backend> HfParams<B> for DownBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_vec(&mut self.resnets, prefix, "resnets", v);
        visit_vec(&mut self.attentions, prefix, "attentions", v);
        visit_vec(&mut self.downsamplers, prefix, "downsamplers", v);
    }
}

impl<B: Backend> HfParams<B> for MidBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_vec(&mut self.attentions, prefix, "attentions", v);
        visit_vec(&mut self.resnets, prefix, "resnets", v);
    }
}

impl<B: Backend> HfParams<B> for UpBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_vec(&mut self.resnets, prefix, "resnets", v);
        visit_vec(&mut self.attentions, prefix, "attentions", v);
        visit_vec(&mut self.upsamplers, prefix, "upsamplers", v);
    }
}

// The table: diffusers `UNet2DConditionModel`'s module names, one line per child.
impl<B: Backend> HfParams<B> for UNet2DConditionModel<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv_in.visit_hf(&format!("{prefix}conv_in."), v);
        self.time_embedding
            .visit_hf(&format!("{prefix}time_embedding."), v);
        visit_vec(&mut self.down_blocks, prefix, "down_blocks", v);
        if let Some(mid) = self.mid_block.as_mut() {
            mid.visit_hf(&format!("{prefix}mid_block."), v);
        }
        visit_vec(&mut self.up_blocks, prefix, "up_blocks", v);
        self.conv_norm_out
            .visit_hf(&format!("{prefix}conv_norm_out."), v);
        self.conv_out.visit_hf(&format!("{prefix}conv_out."), v);
    }
}

/// Reads a UNet folder's `config.json`.
pub fn read_unet_config(dir: &Path) -> Result<UNet2DConditionConfig, FolderError> {
    folder::read_config(
        dir,
        "UNet2DConditionModel",
        UNet2DConditionConfig::from_json,
    )
}

/// Loads a diffusers UNet folder (a pipeline's `unet/`, or one [`save_unet`] wrote); every
/// weight must be present and used.
pub fn load_unet<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(UNet2DConditionModel<B>, UNet2DConditionConfig), FolderError> {
    let config = read_unet_config(dir)?;
    let mut model = config.init::<B>(device);
    folder::load_weights(dir, &mut model, device)?;
    Ok((model, config))
}

/// Writes a UNet folder that diffusers' `UNet2DConditionModel.from_pretrained` loads.
pub fn save_unet<B: Backend>(
    model: &UNet2DConditionModel<B>,
    config: &UNet2DConditionConfig,
    dir: &Path,
) -> Result<(), FolderError> {
    let value = serde_json::to_value(config).expect("configs serialize");
    folder::save(model, value, "UNet2DConditionModel", dir)
}
