//! ResNet-18's layout (torchvision `resnet18`): a 7x7 stem, four stages of two basic residual
//! blocks, global average pooling and an optional linear head. `base_width` scales every stage
//! (64 is torchvision's; the video models train narrower ones on the CPU), and the module tree
//! carries torchvision's key names, so a torchvision state dict loads into it.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::hf::{HfParams, ParamVisitor};
use mm_core::nn::ConfigError;
use mm_core::nn::fused::{batch_norm, conv2d};

/// Shape of a [`ResNet`].
#[derive(Config, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Blocks per stage (`[2, 2, 2, 2]` is ResNet-18).
    #[config(default = "[2, 2, 2, 2]")]
    pub layers: [usize; 4],
    /// Channels of the first stage; the others double it (64 in torchvision).
    #[config(default = 64)]
    pub base_width: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Classes of the linear head; `None` leaves the features (torchvision's `fc = Identity`).
    pub num_classes: Option<usize>,
}

/// A 3x3 convolution without bias, PyTorch padding 1.
fn conv3x3(input: usize, output: usize, stride: usize) -> Conv2dConfig {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
}

/// `conv1 -> bn1 -> relu -> conv2 -> bn2`, plus the input (through `downsample` when the shape
/// changes), then relu.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    /// First 3x3 convolution (carries the stride).
    pub conv1: Conv2d<B>,
    /// Its batch norm.
    pub bn1: BatchNorm<B>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<B>,
    /// Its batch norm.
    pub bn2: BatchNorm<B>,
    /// 1x1 convolution and batch norm on the shortcut, when the shape changes.
    pub downsample: Option<Downsample<B>>,
}

/// The shortcut's projection: a strided 1x1 convolution and a batch norm (`downsample.0/1`).
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// The 1x1 convolution.
    pub conv: Conv2d<B>,
    /// Its batch norm.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> BasicBlock<B> {
    fn new(input: usize, output: usize, stride: usize, device: &B::Device) -> Self {
        let downsample = (stride != 1 || input != output).then(|| Downsample {
            conv: Conv2dConfig::new([input, output], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(output).init(device),
        });
        BasicBlock {
            conv1: conv3x3(input, output, stride).init(device),
            bn1: BatchNormConfig::new(output).init(device),
            conv2: conv3x3(output, output, 1).init(device),
            bn2: BatchNormConfig::new(output).init(device),
            downsample,
        }
    }

    /// The block on `[batch, channels, h, w]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(d) => batch_norm(&d.bn, conv2d(&d.conv, x.clone())),
            None => x.clone(),
        };
        let y = relu(batch_norm(&self.bn1, conv2d(&self.conv1, x)));
        let y = batch_norm(&self.bn2, conv2d(&self.conv2, y));
        relu(y + identity)
    }
}

impl<B: Backend> HfParams<B> for BasicBlock<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv1.visit_hf(&format!("{prefix}conv1."), v);
        self.bn1.visit_hf(&format!("{prefix}bn1."), v);
        self.conv2.visit_hf(&format!("{prefix}conv2."), v);
        self.bn2.visit_hf(&format!("{prefix}bn2."), v);
        if let Some(d) = &mut self.downsample {
            d.conv.visit_hf(&format!("{prefix}downsample.0."), v);
            d.bn.visit_hf(&format!("{prefix}downsample.1."), v);
        }
    }
}

/// The network (torchvision's module names: `conv1`, `bn1`, `layer1`..`layer4`, `fc`).
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// 7x7 stride-2 stem convolution.
    pub conv1: Conv2d<B>,
    /// Its batch norm.
    pub bn1: BatchNorm<B>,
    /// 3x3 stride-2 max pooling after the stem.
    pub maxpool: MaxPool2d,
    /// The four stages.
    pub layers: Vec<Vec<BasicBlock<B>>>,
    /// The linear head, if any.
    pub fc: Option<Linear<B>>,
}

impl ResNetConfig {
    /// Width of the features (the last stage's channels).
    pub fn feature_dim(&self) -> usize {
        self.base_width * 8
    }

    /// The network with freshly initialized weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ResNet<B>, ConfigError> {
        if self.base_width == 0 || self.in_channels == 0 || self.layers.contains(&0) {
            return Err(ConfigError(format!(
                "ResNet needs a positive base_width, in_channels and blocks per stage, got {self:?}"
            )));
        }
        let w = self.base_width;
        let mut layers = Vec::new();
        let mut input = w;
        for (stage, &blocks) in self.layers.iter().enumerate() {
            let output = w << stage;
            let stride = if stage == 0 { 1 } else { 2 };
            let stage: Vec<_> = (0..blocks)
                .map(|i| {
                    let block =
                        BasicBlock::new(input, output, if i == 0 { stride } else { 1 }, device);
                    input = output;
                    block
                })
                .collect();
            layers.push(stage);
        }
        Ok(ResNet {
            conv1: Conv2dConfig::new([self.in_channels, w], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .init(device),
            bn1: BatchNormConfig::new(w).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layers,
            fc: self
                .num_classes
                .map(|n| LinearConfig::new(self.feature_dim(), n).init(device)),
        })
    }
}

impl<B: Backend> ResNet<B> {
    /// The last stage's feature map `[batch, 8 * base_width, h / 32, w / 32]`.
    pub fn feature_map(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(batch_norm(&self.bn1, conv2d(&self.conv1, x)));
        let mut x = self.maxpool.forward(x);
        for block in self.layers.iter().flatten() {
            x = block.forward(x);
        }
        x
    }

    /// Pooled features `[batch, 8 * base_width]` of images `[batch, channels, h, w]`.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.feature_map(x);
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
    }

    /// Features pooled to a `grid` x `grid` map and flattened, `[batch, 8 * base_width *
    /// grid^2]`: where things are survives, which global pooling (`grid` 1) discards.
    pub fn grid_features(&self, x: Tensor<B, 4>, grid: usize) -> Tensor<B, 2> {
        if grid <= 1 {
            return self.features(x);
        }
        let x = adaptive_avg_pool2d(self.feature_map(x), [grid, grid]);
        let [b, c, h, w] = x.dims();
        x.reshape([b, c * h * w])
    }

    /// The head's logits, or the features when there is no head.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let features = self.features(x);
        match &self.fc {
            Some(fc) => fc.forward(features),
            None => features,
        }
    }
}

impl<B: Backend> HfParams<B> for ResNet<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.conv1.visit_hf(&format!("{prefix}conv1."), v);
        self.bn1.visit_hf(&format!("{prefix}bn1."), v);
        for (s, stage) in self.layers.iter_mut().enumerate() {
            for (i, block) in stage.iter_mut().enumerate() {
                block.visit_hf(&format!("{prefix}layer{}.{i}.", s + 1), v);
            }
        }
        if let Some(fc) = &mut self.fc {
            fc.visit_hf(&format!("{prefix}fc."), v);
        }
    }
}
