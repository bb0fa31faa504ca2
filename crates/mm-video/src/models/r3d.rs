//! R3D-18 in torchvision's layout (`torchvision.models.video.r3d_18`): a (3, 7, 7) stem, four
//! stages of two 3x3x3 residual blocks (stages 2-4 halve time and space), global average
//! pooling, a linear head. `base_width` scales every stage (64 is torchvision's).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig3d};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::hf::{HfParams, ParamVisitor};
use mm_core::nn::ConfigError;
use mm_core::nn::pool3d::global_avg_pool3d;

use super::VideoClassifier;
use mm_core::nn::fused::{batch_norm, conv3d};

/// Shape of an [`R3d`].
#[derive(Config, Debug, PartialEq)]
pub struct R3dConfig {
    /// Classes of the head.
    pub num_classes: usize,
    /// Blocks per stage (`[2, 2, 2, 2]`: R3D-18).
    #[config(default = "[2, 2, 2, 2]")]
    pub layers: [usize; 4],
    /// Channels of the first stage (64 in torchvision); later stages double it.
    #[config(default = 64)]
    pub base_width: usize,
}

fn conv3(
    input: usize,
    output: usize,
    kernel: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
) -> Conv3dConfig {
    Conv3dConfig::new([input, output], kernel)
        .with_stride(stride)
        .with_padding(PaddingConfig3d::Explicit(pad[0], pad[1], pad[2]))
        .with_bias(false)
}

/// A convolution followed by its batch norm (torchvision's `Sequential(conv, bn, ...)`, keys
/// `.0` and `.1`).
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// The convolution.
    pub conv: Conv3d<B>,
    /// Its batch norm.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> ConvBn<B> {
    fn new(config: Conv3dConfig, device: &B::Device) -> Self {
        let channels = config.channels[1];
        ConvBn {
            conv: config.init(device),
            bn: BatchNormConfig::new(channels).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        batch_norm(&self.bn, conv3d(&self.conv, x))
    }
}

impl<B: Backend> HfParams<B> for ConvBn<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv.visit_hf(&format!("{prefix}0."), v);
        self.bn.visit_hf(&format!("{prefix}1."), v);
    }
}

/// A basic 3D residual block: `relu(conv2(relu(conv1(x))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct Block3d<B: Backend> {
    /// First 3x3x3 convolution (with the stride) and norm.
    pub conv1: ConvBn<B>,
    /// Second 3x3x3 convolution and norm.
    pub conv2: ConvBn<B>,
    /// 1x1x1 projection of the shortcut, when the shape changes.
    pub downsample: Option<ConvBn<B>>,
}

impl<B: Backend> Block3d<B> {
    fn new(input: usize, output: usize, stride: usize, device: &B::Device) -> Self {
        let s = [stride; 3];
        Block3d {
            conv1: ConvBn::new(conv3(input, output, [3; 3], s, [1; 3]), device),
            conv2: ConvBn::new(conv3(output, output, [3; 3], [1; 3], [1; 3]), device),
            downsample: (stride != 1 || input != output)
                .then(|| ConvBn::new(conv3(input, output, [1; 3], s, [0; 3]), device)),
        }
    }

    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x.clone()),
            None => x.clone(),
        };
        let y = relu(self.conv1.forward(x));
        relu(self.conv2.forward(y) + shortcut)
    }
}

impl<B: Backend> HfParams<B> for Block3d<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv1.visit_hf(&format!("{prefix}conv1."), v);
        self.conv2.visit_hf(&format!("{prefix}conv2."), v);
        if let Some(d) = &mut self.downsample {
            d.visit_hf(&format!("{prefix}downsample."), v);
        }
    }
}

/// The network (keys `stem.0/1`, `layer1`..`layer4`, `fc`).
#[derive(Module, Debug)]
pub struct R3d<B: Backend> {
    /// Stem convolution and norm.
    pub stem: ConvBn<B>,
    /// The four stages.
    pub layers: Vec<Vec<Block3d<B>>>,
    /// The head.
    pub fc: Linear<B>,
}

impl R3dConfig {
    /// The network with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<R3d<B>, ConfigError> {
        if self.base_width == 0 || self.num_classes == 0 || self.layers.contains(&0) {
            return Err(ConfigError(format!("invalid R3D config {self:?}")));
        }
        let w = self.base_width;
        let mut input = w;
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(stage, &blocks)| {
                let output = w << stage;
                (0..blocks)
                    .map(|i| {
                        let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                        let block = Block3d::new(input, output, stride, device);
                        input = output;
                        block
                    })
                    .collect()
            })
            .collect();
        Ok(R3d {
            stem: ConvBn::new(conv3(3, w, [3, 7, 7], [1, 2, 2], [1, 3, 3]), device),
            layers,
            fc: LinearConfig::new(w * 8, self.num_classes).init(device),
        })
    }
}

impl<B: Backend> R3d<B> {
    /// Logits of clips `[batch, channels, time, h, w]`.
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 2> {
        let mut x = relu(self.stem.forward(x));
        for block in self.layers.iter().flatten() {
            x = block.forward(x);
        }
        self.fc.forward(global_avg_pool3d(x))
    }
}

impl<B: Backend> VideoClassifier<B> for R3d<B> {
    fn logits(&self, clips: Tensor<B, 5>) -> Tensor<B, 2> {
        self.forward(clips.swap_dims(1, 2))
    }
}

impl<B: Backend> HfParams<B> for R3d<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.stem.visit_hf(&format!("{prefix}stem."), v);
        for (s, stage) in self.layers.iter_mut().enumerate() {
            for (i, block) in stage.iter_mut().enumerate() {
                block.visit_hf(&format!("{prefix}layer{}.{i}.", s + 1), v);
            }
        }
        self.fc.visit_hf(&format!("{prefix}fc."), v);
    }
}
