//! The guide's CNN+LSTM (`VideoClassifier`): a 2D CNN encodes each frame (ResNet-18's layout,
//! from `mm-vision`), a two-layer LSTM runs over the frame features, and a linear head reads its
//! last output. Beside it, the single-frame baseline: the same frame encoder, features averaged
//! over time, a linear head; what it cannot do, temporal modelling is needed for.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Lstm, LstmConfig};
use burn::tensor::{Tensor, backend::Backend};
use mm_core::hf::layers::lstm_layer;
use mm_core::hf::{HfParams, ParamVisitor};
use mm_core::nn::ConfigError;
use mm_vision::{ResNet, ResNetConfig};

use super::VideoClassifier;

/// Shape of a [`CnnLstm`] (and of a [`FrameBaseline`], which ignores the LSTM fields).
#[derive(Config, Debug, PartialEq)]
pub struct CnnLstmConfig {
    /// Classes of the head.
    pub num_classes: usize,
    /// The frame encoder's first-stage width (64 is torchvision's ResNet-18).
    #[config(default = 64)]
    pub cnn_width: usize,
    /// LSTM hidden size (the guide's 512).
    #[config(default = 512)]
    pub hidden: usize,
    /// LSTM layers (the guide's 2).
    #[config(default = 2)]
    pub lstm_layers: usize,
    /// Dropout between LSTM layers in training (the guide's 0.5).
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Each frame's features pooled to a `grid` x `grid` map and flattened: 1 is the guide's
    /// global average pooling, which keeps what is in the frame but not where; 2 keeps where.
    #[config(default = 1)]
    pub grid: usize,
}

impl CnnLstmConfig {
    fn encoder(&self) -> ResNetConfig {
        ResNetConfig::new().with_base_width(self.cnn_width)
    }

    /// Width of one frame's features.
    fn frame_dim(&self) -> usize {
        self.encoder().feature_dim() * self.grid.max(1).pow(2)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.num_classes == 0 || self.hidden == 0 || self.lstm_layers == 0 {
            return Err(ConfigError(format!("invalid CNN+LSTM config {self:?}")));
        }
        Ok(())
    }

    /// The CNN+LSTM with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CnnLstm<B>, ConfigError> {
        self.check()?;
        let encoder = self.encoder();
        let lstm = (0..self.lstm_layers)
            .map(|k| {
                let input = if k == 0 {
                    self.frame_dim()
                } else {
                    self.hidden
                };
                LstmConfig::new(input, self.hidden, true).init(device)
            })
            .collect();
        Ok(CnnLstm {
            grid: self.grid.max(1),
            spatial_cnn: encoder.init(device)?,
            temporal_lstm: lstm,
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(self.hidden, self.num_classes).init(device),
        })
    }

    /// The single-frame baseline with the same frame encoder.
    pub fn init_baseline<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<FrameBaseline<B>, ConfigError> {
        self.check()?;
        let encoder = self.encoder();
        Ok(FrameBaseline {
            grid: self.grid.max(1),
            classifier: LinearConfig::new(self.frame_dim(), self.num_classes).init(device),
            spatial_cnn: encoder.init(device)?,
        })
    }
}

/// Per-frame features `[batch, time, dim]` of clips `[batch, time, channels, h, w]`.
fn frame_features<B: Backend>(cnn: &ResNet<B>, clips: Tensor<B, 5>, grid: usize) -> Tensor<B, 3> {
    let [b, t, c, h, w] = clips.dims();
    let features = cnn.grid_features(clips.reshape([b * t, c, h, w]), grid);
    let dim = features.dims()[1];
    features.reshape([b, t, dim])
}

/// CNN per frame, LSTM over time, head on the last step.
#[derive(Module, Debug)]
pub struct CnnLstm<B: Backend> {
    /// The frame encoder (keys `spatial_cnn.*`).
    pub spatial_cnn: ResNet<B>,
    /// The LSTM layers (keys `temporal_lstm.weight_ih_l{k}`, ...).
    pub temporal_lstm: Vec<Lstm<B>>,
    /// Dropout between LSTM layers.
    pub dropout: Dropout,
    /// Pooling grid of each frame's features.
    pub grid: usize,
    /// The head (keys `classifier.*`).
    pub classifier: Linear<B>,
}

impl<B: Backend> VideoClassifier<B> for CnnLstm<B> {
    fn logits(&self, clips: Tensor<B, 5>) -> Tensor<B, 2> {
        let mut x = frame_features(&self.spatial_cnn, clips, self.grid);
        let layers = self.temporal_lstm.len();
        for (k, lstm) in self.temporal_lstm.iter().enumerate() {
            x = lstm.forward(x, None).0;
            if k + 1 < layers {
                x = self.dropout.forward(x);
            }
        }
        let [b, t, d] = x.dims();
        self.classifier
            .forward(x.slice([0..b, t - 1..t, 0..d]).reshape([b, d]))
    }
}

impl<B: Backend> HfParams<B> for CnnLstm<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.spatial_cnn
            .visit_hf(&format!("{prefix}spatial_cnn."), v);
        for (k, layer) in self.temporal_lstm.iter_mut().enumerate() {
            lstm_layer(layer, &format!("{prefix}temporal_lstm."), k, v);
        }
        self.classifier.visit_hf(&format!("{prefix}classifier."), v);
    }
}

/// The same frame encoder, features averaged over time, a linear head: no temporal order.
#[derive(Module, Debug)]
pub struct FrameBaseline<B: Backend> {
    /// The frame encoder.
    pub spatial_cnn: ResNet<B>,
    /// Pooling grid of each frame's features.
    pub grid: usize,
    /// The head.
    pub classifier: Linear<B>,
}

impl<B: Backend> VideoClassifier<B> for FrameBaseline<B> {
    fn logits(&self, clips: Tensor<B, 5>) -> Tensor<B, 2> {
        let features = frame_features(&self.spatial_cnn, clips, self.grid);
        let [b, _, d] = features.dims();
        self.classifier
            .forward(features.mean_dim(1).reshape([b, d]))
    }
}

impl<B: Backend> HfParams<B> for FrameBaseline<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.spatial_cnn
            .visit_hf(&format!("{prefix}spatial_cnn."), v);
        self.classifier.visit_hf(&format!("{prefix}classifier."), v);
    }
}
