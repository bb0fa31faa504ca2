//! The autoencoder's key table (diffusers' names, which our module tree mirrors) and its
//! folder: `config.json` plus `diffusion_pytorch_model.safetensors` (or `.bin`).

use std::path::Path;

use burn::tensor::backend::Backend;
use mm_core::hf::{HfError, HfParams, ParamVisitor, WeightMap, WeightWriter};
use serde_json::{Value, json};

use super::config::AutoencoderKLConfig;
use super::model::{AutoencoderKL, VaeAttention, VaeBlock, VaeDecoder, VaeEncoder, VaeMidBlock};
use crate::diffusion::unet::UNetError;
use crate::diffusion::unet::hf::{UNET_WEIGHT_FILES, visit_vec};

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
pub fn read_vae_config(dir: &Path) -> Result<AutoencoderKLConfig, UNetError> {
    let path = dir.join("config.json");
    let bad = |reason: String| UNetError::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if let Some(class) = value.get("_class_name").and_then(Value::as_str)
        && class != "AutoencoderKL"
    {
        return Err(bad(format!(
            "`_class_name` is {class}, expected AutoencoderKL"
        )));
    }
    AutoencoderKLConfig::from_json(&value).map_err(bad)
}

/// Loads a diffusers `AutoencoderKL` folder (a pipeline's `vae/`, or one [`save_vae`] wrote);
/// every weight must be present and used.
pub fn load_vae<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(AutoencoderKL<B>, AutoencoderKLConfig), UNetError> {
    let config = read_vae_config(dir)?;
    let mut model = config.init::<B>(device);
    let file = UNET_WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            UNetError::Weights(HfError::NoWeights {
                dir: dir.into(),
                looked_for: UNET_WEIGHT_FILES.iter().map(|s| s.to_string()).collect(),
            })
        })?;
    WeightMap::<B>::open(&file, &[], device)?.load_into(&mut model, "")?;
    Ok((model, config))
}

/// Writes a folder that diffusers' `AutoencoderKL.from_pretrained` loads.
pub fn save_vae<B: Backend>(
    model: &AutoencoderKL<B>,
    config: &AutoencoderKLConfig,
    dir: &Path,
) -> Result<(), UNetError> {
    let io = |path: &Path, e: std::io::Error| UNetError::Config {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut writer = WeightWriter::new(config.in_channels);
    writer.collect(&mut model.clone(), "");
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    writer.write(&dir.join(UNET_WEIGHT_FILES[0]), Some(metadata))?;
    let mut value = serde_json::to_value(config).expect("configs serialize");
    value["_class_name"] = json!("AutoencoderKL");
    let path = dir.join("config.json");
    mm_data::fs::atomic_write(
        &path,
        &serde_json::to_vec_pretty(&value).expect("JSON values serialize"),
    )
    .map_err(|e| io(&path, e))
}
