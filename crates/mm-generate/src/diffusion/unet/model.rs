//! `UNet2DConditionModel`: the noise predictor of text-to-image diffusion, in diffusers'
//! layout and at any size its `config.json` describes (diffusers
//! `unet_2d_condition.py`, `UNet2DConditionModel.__init__` and `.forward`).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::{Tensor, backend::Backend};
use mm_core::nn::fused::group_norm_silu;

use super::blocks::{BlockShape, DownBlock, MidBlock, UpBlock};
use super::config::UNet2DConditionConfig;
use super::resnet::{TimestepEmbedding, conv, timestep_features};
use mm_core::nn::fused::conv2d;

/// The conditional UNet.
#[derive(Module, Debug)]
pub struct UNet2DConditionModel<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// The timestep MLP.
    pub time_embedding: TimestepEmbedding<B>,
    /// Down blocks, highest resolution first.
    pub down_blocks: Vec<DownBlock<B>>,
    /// The middle block.
    pub mid_block: Option<MidBlock<B>>,
    /// Up blocks, lowest resolution first.
    pub up_blocks: Vec<UpBlock<B>>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// Output convolution.
    pub conv_out: Conv2d<B>,
    /// Sinusoid width (the first block's channels).
    #[module(skip)]
    pub time_features: usize,
    /// Cosine half first.
    #[module(skip)]
    pub flip_sin_to_cos: bool,
    /// Frequency shift.
    #[module(skip)]
    pub freq_shift: f64,
    /// Map the input from [0, 1] to [-1, 1].
    #[module(skip)]
    pub center_input_sample: bool,
    /// The resolution is halved this many times.
    #[module(skip)]
    pub downsamples: usize,
}

impl UNet2DConditionConfig {
    /// Builds a randomly initialised UNet (the config must pass [`Self::validate`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> UNet2DConditionModel<B> {
        let n = self.block_out_channels.len();
        let c0 = self.block_out_channels[0];
        let temb = self.time_embed_dim();
        let shape = |input, output, layers, i: usize, cross: bool| BlockShape {
            input,
            output,
            temb,
            layers,
            attention: cross.then(|| (self.heads(i), self.transformer_layers_per_block.get(i))),
            context: self.cross_attention_dim,
            groups: self.norm_num_groups,
            eps: self.norm_eps,
            linear_projection: self.use_linear_projection,
        };
        let mut down_blocks = Vec::new();
        let mut input = c0;
        for (i, kind) in self.down_block_types.iter().enumerate() {
            let output = self.block_out_channels[i];
            let last = i + 1 == n;
            down_blocks.push(DownBlock::new(
                shape(
                    input,
                    output,
                    self.layers_per_block.get(i),
                    i,
                    kind.starts_with("CrossAttn"),
                ),
                (!last).then_some(self.downsample_padding),
                device,
            ));
            input = output;
        }
        let top = self.block_out_channels[n - 1];
        let mid_block = self.mid_block_type.as_ref().map(|_| {
            let s = shape(top, top, 1, n - 1, true);
            MidBlock::new(s, self.mid_block_scale_factor, device)
        });
        let mut up_blocks = Vec::new();
        let mut output = top;
        for (j, kind) in self.up_block_types.iter().enumerate() {
            // Up block j mirrors down block n - 1 - j.
            let i = n - 1 - j;
            let previous = output;
            output = self.block_out_channels[i];
            let input = self.block_out_channels[i.saturating_sub(1)];
            up_blocks.push(UpBlock::new(
                shape(
                    input,
                    output,
                    self.layers_per_block.get(i) + 1,
                    i,
                    kind.starts_with("CrossAttn"),
                ),
                previous,
                j + 1 < n,
                device,
            ));
        }
        UNet2DConditionModel {
            conv_in: conv(
                [self.in_channels, c0],
                self.conv_in_kernel,
                1,
                self.conv_in_kernel / 2,
                device,
            ),
            time_embedding: TimestepEmbedding::new(c0, temb, device),
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNormConfig::new(self.norm_num_groups, c0)
                .with_epsilon(self.norm_eps)
                .init(device),
            conv_out: conv(
                [c0, self.out_channels],
                self.conv_out_kernel,
                1,
                self.conv_out_kernel / 2,
                device,
            ),
            time_features: c0,
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift as f64,
            center_input_sample: self.center_input_sample,
            downsamples: n - 1,
        }
    }
}

impl<B: Backend> UNet2DConditionModel<B> {
    /// The predicted noise (or v, or sample: whatever the model was trained for).
    ///
    /// `timesteps` holds one timestep per batch item, or one for all. The height and width
    /// must be divisible by `2^(blocks - 1)` ([`Self::size_multiple`]).
    ///
    /// # Shapes
    /// - `sample`: `[batch, in_channels, h, w]`; `timesteps`: `[batch]` or `[1]`;
    ///   `context`: `[batch, tokens, cross_attention_dim]`; output `[batch, out_channels, h, w]`.
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        context: Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        let [batch, _, _, _] = sample.dims();
        let timesteps = if timesteps.dims()[0] == batch {
            timesteps
        } else {
            timesteps.expand([batch])
        };
        let sample = if self.center_input_sample {
            sample.mul_scalar(2.0).sub_scalar(1.0)
        } else {
            sample
        };
        let features = timestep_features(
            timesteps,
            self.time_features,
            self.flip_sin_to_cos,
            self.freq_shift,
        );
        let temb = self.time_embedding.forward(features);
        let mut x = conv2d(&self.conv_in, sample);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            x = block.forward(x, &temb, &context, &mut skips);
        }
        if let Some(mid) = &self.mid_block {
            x = mid.forward(x, &temb, &context);
        }
        for block in &self.up_blocks {
            x = block.forward(x, &temb, &context, &mut skips);
        }
        conv2d(&self.conv_out, group_norm_silu(&self.conv_norm_out, x))
    }

    /// What the height and width must be a multiple of.
    pub fn size_multiple(&self) -> usize {
        1 << self.downsamples
    }
}
