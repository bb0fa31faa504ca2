//! A multilayer perceptron: `Linear -> ReLU` blocks and a final `Linear`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, activation::relu, backend::Backend};

/// Sizes of an [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Input width.
    pub d_input: usize,
    /// Width of every hidden layer.
    pub d_hidden: usize,
    /// Output width.
    pub d_output: usize,
    /// Number of hidden layers (0 makes a single linear map).
    #[config(default = 2)]
    pub n_hidden: usize,
}

impl MlpConfig {
    /// Builds the MLP with Burn's default initialization.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        let mut widths = vec![self.d_input];
        widths.extend(std::iter::repeat_n(self.d_hidden, self.n_hidden));
        widths.push(self.d_output);
        let layers = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Mlp { layers }
    }
}

/// `Linear -> ReLU -> ... -> Linear`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
}

impl<B: Backend> Mlp<B> {
    /// # Shapes
    /// - `x`: `[batch, d_input]` -> `[batch, d_output]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let h = layer.forward(h);
            if i < last { relu(h) } else { h }
        })
    }
}
