//! Early fusion: concatenate, then one `Linear -> ReLU` over the joint vector (the guide's
//! `FusionStrategies.early_fusion`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, activation::relu, backend::Backend};

use super::{Fusion, FusionError, check_inputs};

/// Sizes of an [`EarlyFusion`].
#[derive(Config, Debug)]
pub struct EarlyFusionConfig {
    /// Widths of the modalities.
    pub d_inputs: Vec<usize>,
    /// Output width `h`.
    pub d_output: usize,
}

impl EarlyFusionConfig {
    /// Builds the module.
    pub fn init<B: Backend>(&self, device: &B::Device) -> EarlyFusion<B> {
        let total = self.d_inputs.iter().sum();
        EarlyFusion {
            joint: LinearConfig::new(total, self.d_output).init(device),
            d_inputs: self.d_inputs.clone(),
        }
    }
}

/// `ReLU(W [x; y; ...] + b)`: `(sum d_m) h + h` parameters.
#[derive(Module, Debug)]
pub struct EarlyFusion<B: Backend> {
    joint: Linear<B>,
    #[module(skip)]
    d_inputs: Vec<usize>,
}

impl<B: Backend> Fusion<B> for EarlyFusion<B> {
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError> {
        check_inputs(inputs, &self.d_inputs)?;
        let joint = Tensor::cat(inputs.to_vec(), 1); // [batch, sum d_m]
        Ok(relu(self.joint.forward(joint))) // [batch, h]
    }

    fn input_dims(&self) -> Vec<usize> {
        self.d_inputs.clone()
    }

    fn output_dim(&self) -> usize {
        self.joint.weight.dims()[1]
    }
}
