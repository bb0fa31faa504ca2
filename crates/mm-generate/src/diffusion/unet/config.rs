//! `UNet2DConditionModel`'s `config.json`, with diffusers' key names and defaults.
//!
//! Only the parts of diffusers' configuration space that this crate implements are accepted;
//! a folder that needs more (class embeddings, added conditioning, a scale-shift time
//! embedding, ...) is refused with the key that asks for it.

use serde::{Deserialize, Serialize};

/// One value for every block, or one per block (diffusers accepts both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    /// The same for every block.
    One(usize),
    /// One per down block (up blocks take them reversed).
    Each(Vec<usize>),
}

impl PerBlock {
    /// The value of down block `i`.
    pub fn get(&self, i: usize) -> usize {
        match self {
            Self::One(v) => *v,
            Self::Each(v) => v[i.min(v.len() - 1)],
        }
    }

    fn len_ok(&self, blocks: usize) -> bool {
        match self {
            Self::One(v) => *v > 0,
            Self::Each(v) => v.len() == blocks && v.iter().all(|&x| x > 0),
        }
    }
}

fn d_in() -> usize {
    4
}
fn d_blocks() -> Vec<usize> {
    vec![320, 640, 1280, 1280]
}
fn d_down() -> Vec<String> {
    [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ]
    .map(String::from)
    .to_vec()
}
fn d_up() -> Vec<String> {
    [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ]
    .map(String::from)
    .to_vec()
}
fn d_mid() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn d_two() -> PerBlock {
    PerBlock::One(2)
}
fn d_one_block() -> PerBlock {
    PerBlock::One(1)
}
fn d_heads() -> PerBlock {
    PerBlock::One(8)
}
fn d_one() -> usize {
    1
}
fn d_three() -> usize {
    3
}
fn d_groups() -> usize {
    32
}
fn d_eps() -> f64 {
    1e-5
}
fn d_scale() -> f64 {
    1.0
}
fn d_cross() -> usize {
    1280
}
fn d_true() -> bool {
    true
}
fn d_silu() -> String {
    "silu".into()
}
fn d_default() -> String {
    "default".into()
}
fn d_positional() -> String {
    "positional".into()
}

/// The UNet's settings (diffusers `UNet2DConditionModel.__init__`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNet2DConditionConfig {
    /// Image (or latent) side the model was trained on.
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Input channels.
    #[serde(default = "d_in")]
    pub in_channels: usize,
    /// Output channels.
    #[serde(default = "d_in")]
    pub out_channels: usize,
    /// Map the input from [0, 1] to [-1, 1] first.
    #[serde(default)]
    pub center_input_sample: bool,
    /// Cosine half first in the timestep embedding.
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    /// The timestep embedding's frequency shift.
    #[serde(default)]
    pub freq_shift: usize,
    /// Down blocks: `CrossAttnDownBlock2D` or `DownBlock2D`.
    #[serde(default = "d_down")]
    pub down_block_types: Vec<String>,
    /// The middle block: `UNetMidBlock2DCrossAttn`, or none.
    #[serde(default = "d_mid")]
    pub mid_block_type: Option<String>,
    /// Up blocks: `CrossAttnUpBlock2D` or `UpBlock2D`.
    #[serde(default = "d_up")]
    pub up_block_types: Vec<String>,
    /// Channels of each down block.
    #[serde(default = "d_blocks")]
    pub block_out_channels: Vec<usize>,
    /// ResNet blocks per down block (up blocks have one more).
    #[serde(default = "d_two")]
    pub layers_per_block: PerBlock,
    /// The downsampling convolution's padding.
    #[serde(default = "d_one")]
    pub downsample_padding: usize,
    /// The middle block's residual scale.
    #[serde(default = "d_scale")]
    pub mid_block_scale_factor: f64,
    /// Activation (only `silu`).
    #[serde(default = "d_silu")]
    pub act_fn: String,
    /// Group-norm groups.
    #[serde(default = "d_groups")]
    pub norm_num_groups: usize,
    /// Group-norm epsilon of the ResNet blocks and the output norm.
    #[serde(default = "d_eps")]
    pub norm_eps: f64,
    /// Width of the text states attended to.
    #[serde(default = "d_cross")]
    pub cross_attention_dim: usize,
    /// Transformer layers in each attention block.
    #[serde(default = "d_one_block")]
    pub transformer_layers_per_block: PerBlock,
    /// Heads of each block's attention (diffusers' legacy name; see `num_attention_heads`).
    #[serde(default = "d_heads")]
    pub attention_head_dim: PerBlock,
    /// Heads of each block's attention; when absent diffusers takes `attention_head_dim`.
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    /// Linear instead of 1x1-convolution projections into and out of attention.
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Upcast attention to f32 (a no-op here: we compute in f32).
    #[serde(default)]
    pub upcast_attention: bool,
    /// How the timestep enters ResNet blocks (only `default`: added).
    #[serde(default = "d_default")]
    pub resnet_time_scale_shift: String,
    /// Timestep embedding kind (only `positional`).
    #[serde(default = "d_positional")]
    pub time_embedding_type: String,
    /// Input convolution kernel.
    #[serde(default = "d_three")]
    pub conv_in_kernel: usize,
    /// Output convolution kernel.
    #[serde(default = "d_three")]
    pub conv_out_kernel: usize,
    /// Dropout in the ResNet blocks (training).
    #[serde(default)]
    pub dropout: f64,
}

/// Settings that must keep their diffusers default, because we implement only that.
const MUST_BE_ABSENT: [&str; 11] = [
    "class_embed_type",
    "addition_embed_type",
    "encoder_hid_dim",
    "encoder_hid_dim_type",
    "time_cond_proj_dim",
    "time_embedding_dim",
    "num_class_embeds",
    "projection_class_embeddings_input_dim",
    "reverse_transformer_layers_per_block",
    "cross_attention_norm",
    "timestep_post_act",
];
const MUST_BE_FALSE: [&str; 5] = [
    "class_embeddings_concat",
    "only_cross_attention",
    "dual_cross_attention",
    "resnet_skip_time_act",
    "mid_block_only_cross_attention",
];

impl UNet2DConditionConfig {
    /// Parses a `config.json`, refusing what is not implemented (the error names the key).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        if let Some(object) = value.as_object() {
            for key in MUST_BE_ABSENT {
                if object.get(key).is_some_and(|v| !v.is_null()) {
                    return Err(format!("`{key}` is not supported"));
                }
            }
            for key in MUST_BE_FALSE {
                let set = |v: &serde_json::Value| match v {
                    serde_json::Value::Null | serde_json::Value::Bool(false) => false,
                    serde_json::Value::Array(items) => items.iter().any(|i| i != false),
                    _ => true,
                };
                if object.get(key).is_some_and(set) {
                    return Err(format!("`{key}` other than false is not supported"));
                }
            }
            if object
                .get("attention_type")
                .is_some_and(|v| v.as_str() != Some("default"))
            {
                return Err("`attention_type` other than \"default\" is not supported".into());
            }
        }
        let config: Self = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Heads of down block `i`'s attention.
    pub fn heads(&self, i: usize) -> usize {
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .get(i)
    }

    /// The timestep embedding width: four times the first block's channels.
    pub fn time_embed_dim(&self) -> usize {
        self.block_out_channels[0] * 4
    }

    /// Checks the block lists agree and every width divides as it must.
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
        for t in &self.down_block_types {
            if !matches!(t.as_str(), "CrossAttnDownBlock2D" | "DownBlock2D") {
                return Err(format!("`down_block_types`: `{t}` is not supported"));
            }
        }
        for t in &self.up_block_types {
            if !matches!(t.as_str(), "CrossAttnUpBlock2D" | "UpBlock2D") {
                return Err(format!("`up_block_types`: `{t}` is not supported"));
            }
        }
        if let Some(t) = &self.mid_block_type
            && t != "UNetMidBlock2DCrossAttn"
        {
            return Err(format!("`mid_block_type`: `{t}` is not supported"));
        }
        let simple = [
            ("act_fn", self.act_fn.as_str(), "silu"),
            (
                "resnet_time_scale_shift",
                self.resnet_time_scale_shift.as_str(),
                "default",
            ),
            (
                "time_embedding_type",
                self.time_embedding_type.as_str(),
                "positional",
            ),
        ];
        for (key, value, only) in simple {
            if value != only {
                return Err(format!("`{key}: {value}` is not supported (only {only})"));
            }
        }
        let heads = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim);
        for (name, p) in [
            ("layers_per_block", &self.layers_per_block),
            (
                "transformer_layers_per_block",
                &self.transformer_layers_per_block,
            ),
            ("attention heads", heads),
        ] {
            if !p.len_ok(n) {
                return Err(format!("{name}: expected a positive number or {n} of them"));
            }
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c == 0 || !c.is_multiple_of(self.norm_num_groups) {
                return Err(format!(
                    "block_out_channels[{i}] = {c} is not a multiple of norm_num_groups {}",
                    self.norm_num_groups
                ));
            }
            if !c.is_multiple_of(self.heads(i)) {
                return Err(format!(
                    "block_out_channels[{i}] = {c} is not a multiple of its {} heads",
                    self.heads(i)
                ));
            }
        }
        if self.conv_in_kernel.is_multiple_of(2) || self.conv_out_kernel.is_multiple_of(2) {
            return Err("conv_in_kernel and conv_out_kernel must be odd".into());
        }
        Ok(())
    }
}
