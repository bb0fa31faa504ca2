//! Bilinear fusion: every output is a bilinear form of the two modalities,
//! `z_k = x^T W_k y + b_k` (as `torch.nn.Bilinear`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor, backend::Backend};

use super::{Fusion, FusionError, check_inputs};

/// Sizes of a [`BilinearFusion`].
#[derive(Config, Debug)]
pub struct BilinearFusionConfig {
    /// Width of the first modality.
    pub d_x: usize,
    /// Width of the second modality.
    pub d_y: usize,
    /// Output width `h`.
    pub d_output: usize,
}

impl BilinearFusionConfig {
    /// Builds the module; weights uniform in `+-1/sqrt(d_x)` like `torch.nn.Bilinear`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BilinearFusion<B> {
        let bound = 1.0 / (self.d_x as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        BilinearFusion {
            weight: Param::from_tensor(Tensor::random(
                [self.d_x, self.d_output, self.d_y],
                dist,
                device,
            )),
            bias: Param::from_tensor(Tensor::random([self.d_output], dist, device)),
        }
    }
}

/// `z_k = x^T W_k y + b_k`: `d_x d_y h + h` parameters.
#[derive(Module, Debug)]
pub struct BilinearFusion<B: Backend> {
    /// `[d_x, h, d_y]`.
    weight: Param<Tensor<B, 3>>,
    /// `[h]`.
    bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Fusion<B> for BilinearFusion<B> {
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError> {
        check_inputs(inputs, &self.input_dims())?;
        let [d_x, h, d_y] = self.weight.dims();
        let [batch, _] = inputs[0].dims();
        let w = self.weight.val().reshape([d_x, h * d_y]);
        let xw = inputs[0].clone().matmul(w).reshape([batch, h, d_y]); // [batch, h, d_y]
        let y = inputs[1].clone().reshape([batch, 1, d_y]); // [batch, 1, d_y]
        let z = (xw * y).sum_dim(2).reshape([batch, h]); // [batch, h]
        Ok(z + self.bias.val().reshape([1, h]))
    }

    fn input_dims(&self) -> Vec<usize> {
        let [d_x, _, d_y] = self.weight.dims();
        vec![d_x, d_y]
    }

    fn output_dim(&self) -> usize {
        self.weight.dims()[1]
    }
}
