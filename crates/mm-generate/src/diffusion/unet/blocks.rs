//! The UNet's stages: down blocks that keep their outputs for the skip connections, the
//! middle block, and up blocks that concatenate them back (diffusers `unet_2d_blocks.py`:
//! `DownBlock2D`, `CrossAttnDownBlock2D`, `UNetMidBlock2DCrossAttn`, `UpBlock2D`,
//! `CrossAttnUpBlock2D`). A block with no attentions is the plain kind.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::attention::Transformer2D;
use super::resnet::{Downsample2D, ResnetBlock2D, Upsample2D};

/// Everything a block needs to build its layers.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    /// Channels in.
    pub input: usize,
    /// Channels out.
    pub output: usize,
    /// Timestep embedding width.
    pub temb: usize,
    /// ResNet blocks.
    pub layers: usize,
    /// Attention: `Some((heads, transformer layers))`, or none for a plain block.
    pub attention: Option<(usize, usize)>,
    /// Text state width.
    pub context: usize,
    /// Group-norm groups.
    pub groups: usize,
    /// Group-norm epsilon of the ResNet blocks.
    pub eps: f64,
    /// Linear attention projections.
    pub linear_projection: bool,
}

impl BlockShape {
    fn attention<B: Backend>(
        &self,
        channels: usize,
        device: &B::Device,
    ) -> Option<Transformer2D<B>> {
        self.attention.map(|(heads, depth)| {
            Transformer2D::new(
                channels,
                self.context,
                heads,
                depth,
                self.groups,
                self.linear_projection,
                device,
            )
        })
    }
}

/// A down block: ResNet blocks (each followed by attention in the cross-attention kind),
/// then an optional stride-2 convolution.
#[derive(Module, Debug)]
pub struct DownBlock<B: Backend> {
    /// ResNet blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// One attention per ResNet block, or none.
    pub attentions: Vec<Transformer2D<B>>,
    /// The downsampler (absent in the last block).
    pub downsamplers: Vec<Downsample2D<B>>,
}

impl<B: Backend> DownBlock<B> {
    /// A block of `shape`, with a downsampler when `downsample` is `Some(padding)`.
    pub fn new(shape: BlockShape, downsample: Option<usize>, device: &B::Device) -> Self {
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..shape.layers {
            let cin = if i == 0 { shape.input } else { shape.output };
            resnets.push(ResnetBlock2D::new(
                [cin, shape.output],
                Some(shape.temb),
                shape.groups,
                shape.eps,
                1.0,
                device,
            ));
            attentions.extend(shape.attention(shape.output, device));
        }
        Self {
            resnets,
            attentions,
            downsamplers: downsample
                .map(|p| Downsample2D::new(shape.output, p, device))
                .into_iter()
                .collect(),
        }
    }

    /// Runs the block, pushing each intermediate output onto `skips`.
    ///
    /// # Shapes
    /// - `x`: `[batch, input, h, w]`; output `[batch, output, h/2, w/2]` (or `h, w` unsampled).
    pub fn forward(
        &self,
        mut x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        context: &Tensor<B, 3>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        for (i, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(x, Some(temb.clone()));
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(x, context.clone());
            }
            skips.push(x.clone());
        }
        for down in &self.downsamplers {
            x = down.forward(x);
            skips.push(x.clone());
        }
        x
    }
}

/// The middle block: ResNet, then (attention, ResNet) pairs.
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    /// One attention per ResNet block after the first.
    pub attentions: Vec<Transformer2D<B>>,
    /// `1 + attentions` ResNet blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
}

impl<B: Backend> MidBlock<B> {
    /// One attention (of `shape.attention`) between two ResNet blocks.
    pub fn new(shape: BlockShape, scale: f64, device: &B::Device) -> Self {
        let c = shape.input;
        let resnet = || {
            ResnetBlock2D::new(
                [c, c],
                Some(shape.temb),
                shape.groups,
                shape.eps,
                scale,
                device,
            )
        };
        Self {
            attentions: shape.attention(c, device).into_iter().collect(),
            resnets: vec![resnet(), resnet()],
        }
    }

    /// # Shapes
    /// - `x`: `[batch, c, h, w]`; output the same.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        context: &Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x, Some(temb.clone()));
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = resnet.forward(attn.forward(x, context.clone()), Some(temb.clone()));
        }
        x
    }
}

/// An up block: ResNet blocks over the input concatenated with a skip (each followed by
/// attention in the cross-attention kind), then an optional upsampler.
#[derive(Module, Debug)]
pub struct UpBlock<B: Backend> {
    /// ResNet blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// One attention per ResNet block, or none.
    pub attentions: Vec<Transformer2D<B>>,
    /// The upsampler (absent in the last block).
    pub upsamplers: Vec<Upsample2D<B>>,
}

impl<B: Backend> UpBlock<B> {
    /// `shape.input` is the matching down block's input width, `previous` the width coming
    /// from below; `shape.layers` is the down block's count plus one.
    pub fn new(shape: BlockShape, previous: usize, upsample: bool, device: &B::Device) -> Self {
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..shape.layers {
            let skip = if i + 1 == shape.layers {
                shape.input
            } else {
                shape.output
            };
            let cin = if i == 0 { previous } else { shape.output };
            resnets.push(ResnetBlock2D::new(
                [cin + skip, shape.output],
                Some(shape.temb),
                shape.groups,
                shape.eps,
                1.0,
                device,
            ));
            attentions.extend(shape.attention(shape.output, device));
        }
        Self {
            resnets,
            attentions,
            upsamplers: upsample
                .then(|| Upsample2D::new(shape.output, device))
                .into_iter()
                .collect(),
        }
    }

    /// Runs the block, taking its skips from the end of `skips`.
    ///
    /// # Shapes
    /// - `x`: `[batch, previous, h, w]`; output `[batch, output, 2h, 2w]` (or `h, w`).
    pub fn forward(
        &self,
        mut x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        context: &Tensor<B, 3>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = skips.pop().expect("one skip per up-block ResNet");
            x = resnet.forward(Tensor::cat(vec![x, skip], 1), Some(temb.clone()));
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(x, context.clone());
            }
        }
        for up in &self.upsamplers {
            x = up.forward(x);
        }
        x
    }
}
