//! The guide's `Video3DCNN`: three Conv3d + BatchNorm3d + ReLU + MaxPool3d stages, global
//! average pooling and a linear classifier, with the guide's module names (`conv3d.0`,
//! `conv3d.1`, `conv3d.4`, ... and `classifier`). `width` scales the stages (64 in the guide).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig3d};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use mm_core::hf::{HfParams, ParamVisitor};
use mm_core::nn::ConfigError;
use mm_core::nn::pool3d::{MaxPool3d, MaxPool3dConfig, global_avg_pool3d};

use super::VideoClassifier;
use mm_core::nn::fused::{batch_norm, conv3d};

/// Shape of a [`C3d`].
#[derive(Config, Debug, PartialEq)]
pub struct C3dConfig {
    /// Classes of the head.
    pub num_classes: usize,
    /// Channels of the first stage (the guide's 64); the others are 2x and 4x.
    #[config(default = 64)]
    pub width: usize,
}

/// One stage: convolution, batch norm, relu, max pooling.
#[derive(Module, Debug)]
pub struct Stage<B: Backend> {
    /// The convolution (with bias, as in the guide).
    pub conv: Conv3d<B>,
    /// Its batch norm.
    pub bn: BatchNorm<B>,
    /// The pooling after it.
    pub pool: MaxPool3d,
}

/// The network.
#[derive(Module, Debug)]
pub struct C3d<B: Backend> {
    /// The three stages.
    pub stages: Vec<Stage<B>>,
    /// The linear head.
    pub classifier: Linear<B>,
}

impl C3dConfig {
    /// The network with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<C3d<B>, ConfigError> {
        if self.width == 0 || self.num_classes == 0 {
            return Err(ConfigError(format!("invalid C3D config {self:?}")));
        }
        let w = self.width;
        let stage = |input: usize,
                     output: usize,
                     kernel,
                     stride,
                     pad: [usize; 3],
                     pool: MaxPool3dConfig| Stage {
            conv: Conv3dConfig::new([input, output], kernel)
                .with_stride(stride)
                .with_padding(PaddingConfig3d::Explicit(pad[0], pad[1], pad[2]))
                .init(device),
            bn: BatchNormConfig::new(output).init(device),
            pool: pool.init(),
        };
        let later_pool = || MaxPool3dConfig::new([2, 3, 3], [2, 2, 2]).with_padding([0, 1, 1]);
        Ok(C3d {
            stages: vec![
                stage(
                    3,
                    w,
                    [3, 7, 7],
                    [1, 2, 2],
                    [1, 3, 3],
                    MaxPool3dConfig::new([1, 3, 3], [1, 2, 2]).with_padding([0, 1, 1]),
                ),
                stage(w, 2 * w, [3, 3, 3], [1, 1, 1], [1, 1, 1], later_pool()),
                stage(2 * w, 4 * w, [3, 3, 3], [1, 1, 1], [1, 1, 1], later_pool()),
            ],
            classifier: LinearConfig::new(4 * w, self.num_classes).init(device),
        })
    }
}

impl<B: Backend> C3d<B> {
    /// Logits of clips `[batch, channels, time, h, w]`.
    pub fn forward(&self, mut x: Tensor<B, 5>) -> Tensor<B, 2> {
        for s in &self.stages {
            x = s.pool.forward(relu(batch_norm(&s.bn, conv3d(&s.conv, x))));
        }
        self.classifier.forward(global_avg_pool3d(x))
    }
}

impl<B: Backend> VideoClassifier<B> for C3d<B> {
    fn logits(&self, clips: Tensor<B, 5>) -> Tensor<B, 2> {
        self.forward(clips.swap_dims(1, 2))
    }
}

impl<B: Backend> HfParams<B> for C3d<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        // nn.Sequential indices: conv, bn, relu, pool per stage.
        for (i, s) in self.stages.iter_mut().enumerate() {
            s.conv.visit_hf(&format!("{prefix}conv3d.{}.", 4 * i), v);
            s.bn.visit_hf(&format!("{prefix}conv3d.{}.", 4 * i + 1), v);
        }
        self.classifier.visit_hf(&format!("{prefix}classifier."), v);
    }
}
