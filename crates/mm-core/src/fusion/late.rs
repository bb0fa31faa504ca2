//! Late fusion: each modality is projected on its own (`Linear -> ReLU`), and the projections
//! are combined element-wise, by sum or product (the guide's `FusionStrategies.late_fusion`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, activation::relu, backend::Backend};
use serde::{Deserialize, Serialize};

use super::{Fusion, FusionError, check_inputs};

/// How the per-modality projections are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LateMode {
    /// Element-wise sum: no cross-modal interaction before the next layer.
    Sum,
    /// Element-wise (Hadamard) product: multiplicative interaction at the same position.
    Product,
}

/// Sizes of a [`LateFusion`].
#[derive(Config, Debug)]
pub struct LateFusionConfig {
    /// Widths of the modalities.
    pub d_inputs: Vec<usize>,
    /// Output width `h` (every projection's width).
    pub d_output: usize,
    /// Sum or product.
    #[config(default = "LateMode::Sum")]
    pub mode: LateMode,
}

impl LateFusionConfig {
    /// Builds the module.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LateFusion<B> {
        LateFusion {
            projections: self
                .d_inputs
                .iter()
                .map(|&d| LinearConfig::new(d, self.d_output).init(device))
                .collect(),
            d_inputs: self.d_inputs.clone(),
            mode: self.mode,
        }
    }
}

/// `ReLU(W_x x + b_x) (+ or *) ReLU(W_y y + b_y) ...`: `sum (d_m h + h)` parameters.
#[derive(Module, Debug)]
pub struct LateFusion<B: Backend> {
    projections: Vec<Linear<B>>,
    #[module(skip)]
    d_inputs: Vec<usize>,
    #[module(skip)]
    mode: LateMode,
}

impl<B: Backend> Fusion<B> for LateFusion<B> {
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError> {
        check_inputs(inputs, &self.d_inputs)?;
        let mut projected = inputs
            .iter()
            .zip(&self.projections)
            .map(|(x, p)| relu(p.forward(x.clone()))); // each [batch, h]
        let first = projected.next().expect("at least one modality");
        Ok(projected.fold(first, |acc, p| match self.mode {
            LateMode::Sum => acc + p,
            LateMode::Product => acc * p,
        }))
    }

    fn input_dims(&self) -> Vec<usize> {
        self.d_inputs.clone()
    }

    fn output_dim(&self) -> usize {
        self.projections[0].weight.dims()[1]
    }
}
