//! The video classifiers: the guide's CNN+LSTM and 3D CNN, torchvision's R3D-18, and the
//! single-frame baseline. Each takes clips as `[batch, time, channels, height, width]` (the 3D
//! CNNs swap to `[batch, channels, time, ...]` themselves) and names its weights as its PyTorch
//! twin does.

pub mod c3d;
pub mod r3d;
pub mod recurrent;

use burn::tensor::{Tensor, backend::Backend};

pub use c3d::{C3d, C3dConfig};
pub use r3d::{R3d, R3dConfig};
pub use recurrent::{CnnLstm, CnnLstmConfig, FrameBaseline};

/// A model that classifies clips.
pub trait VideoClassifier<B: Backend> {
    /// Logits `[batch, classes]` of clips `[batch, time, channels, height, width]`.
    fn logits(&self, clips: Tensor<B, 5>) -> Tensor<B, 2>;
}
