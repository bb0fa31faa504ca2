//! `AutoencoderKL`'s `config.json`, with diffusers' key names and defaults.

use serde::{Deserialize, Serialize};

fn d_three() -> usize {
    3
}
fn d_four() -> usize {
    4
}
fn d_one() -> usize {
    1
}
fn d_down() -> Vec<String> {
    vec!["DownEncoderBlock2D".into()]
}
fn d_up() -> Vec<String> {
    vec!["UpDecoderBlock2D".into()]
}
fn d_blocks() -> Vec<usize> {
    vec![64]
}
fn d_groups() -> usize {
    32
}
fn d_scaling() -> f64 {
    0.18215
}
fn d_true() -> bool {
    true
}
fn d_silu() -> String {
    "silu".into()
}

/// The autoencoder's settings (diffusers `AutoencoderKL.__init__`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderKLConfig {
    /// Image channels in.
    #[serde(default = "d_three")]
    pub in_channels: usize,
    /// Image channels out.
    #[serde(default = "d_three")]
    pub out_channels: usize,
    /// Encoder blocks (only `DownEncoderBlock2D`).
    #[serde(default = "d_down")]
    pub down_block_types: Vec<String>,
    /// Decoder blocks (only `UpDecoderBlock2D`).
    #[serde(default = "d_up")]
    pub up_block_types: Vec<String>,
    /// Channels of each encoder block (the decoder's reversed).
    #[serde(default = "d_blocks")]
    pub block_out_channels: Vec<usize>,
    /// ResNet blocks per encoder block (decoder blocks have one more).
    #[serde(default = "d_one")]
    pub layers_per_block: usize,
    /// Activation (only `silu`).
    #[serde(default = "d_silu")]
    pub act_fn: String,
    /// Latent channels.
    #[serde(default = "d_four")]
    pub latent_channels: usize,
    /// Group-norm groups.
    #[serde(default = "d_groups")]
    pub norm_num_groups: usize,
    /// Image side the model was trained on.
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Latents are multiplied by this before the UNet sees them.
    #[serde(default = "d_scaling")]
    pub scaling_factor: f64,
    /// Subtracted from latents before scaling (none: 0).
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// A 1x1 convolution after the encoder.
    #[serde(default = "d_true")]
    pub use_quant_conv: bool,
    /// A 1x1 convolution before the decoder.
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    /// Self-attention in the middle blocks.
    #[serde(default = "d_true")]
    pub mid_block_add_attention: bool,
}

impl AutoencoderKLConfig {
    /// Parses a `config.json` and checks it (the error names the key).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let config: Self = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks block lists, widths and kinds.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(format!(
                "{} down blocks, {} up blocks and {} block_out_channels must agree",
                self.down_block_types.len(),
                self.up_block_types.len(),
                n
            ));
        }
        if let Some(t) = self
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
        {
            return Err(format!("`down_block_types`: `{t}` is not supported"));
        }
        if let Some(t) = self
            .up_block_types
            .iter()
            .find(|t| *t != "UpDecoderBlock2D")
        {
            return Err(format!("`up_block_types`: `{t}` is not supported"));
        }
        if self.act_fn != "silu" {
            return Err(format!(
                "`act_fn: {}` is not supported (only silu)",
                self.act_fn
            ));
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c == 0 || !c.is_multiple_of(self.norm_num_groups) {
                return Err(format!(
                    "block_out_channels[{i}] = {c} is not a multiple of norm_num_groups {}",
                    self.norm_num_groups
                ));
            }
        }
        if self.latent_channels == 0 || self.layers_per_block == 0 {
            return Err("latent_channels and layers_per_block must be positive".into());
        }
        Ok(())
    }
}
