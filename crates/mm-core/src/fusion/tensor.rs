//! Tensor fusion (Zadeh et al., 2017) and its low-rank factorization (Liu et al., 2018).
//!
//! Tensor fusion is the flattened outer product of every modality with a 1 appended,
//! `[1; z_x] (x) [1; z_y] (x) [1; z_z]`, which keeps unimodal, bimodal and trimodal terms.
//! A linear layer on it has `h prod (1 + d_m)` weights; low-rank fusion factors each output's
//! weight tensor into `R` rank-one terms and never forms the product:
//! `h = sum_r prod_m (W_m^r [1; z_m])`.

use std::marker::PhantomData;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor, backend::Backend};

use super::{Fusion, FusionError, append_one, check_inputs};

/// Sizes of a [`TensorFusion`].
#[derive(Config, Debug)]
pub struct TensorFusionConfig {
    /// Widths of the modalities (two or three).
    pub d_inputs: Vec<usize>,
}

impl TensorFusionConfig {
    /// Builds the (parameter-free) module.
    pub fn init<B: Backend>(&self) -> Result<TensorFusion<B>, FusionError> {
        if !(2..=3).contains(&self.d_inputs.len()) {
            return Err(FusionError::Config(format!(
                "tensor fusion takes 2 or 3 modalities, not {}",
                self.d_inputs.len()
            )));
        }
        Ok(TensorFusion {
            d_inputs: self.d_inputs.clone(),
            backend: PhantomData,
        })
    }
}

/// The flattened outer product of `[1; z_m]` over modalities: no parameters,
/// `prod (1 + d_m)` outputs.
#[derive(Module, Debug)]
pub struct TensorFusion<B: Backend> {
    #[module(skip)]
    d_inputs: Vec<usize>,
    backend: PhantomData<B>,
}

impl<B: Backend> Fusion<B> for TensorFusion<B> {
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError> {
        check_inputs(inputs, &self.d_inputs)?;
        let [batch, _] = inputs[0].dims();
        let mut iter = inputs.iter().map(|z| append_one(z.clone()));
        let first = iter.next().expect("two or more modalities");
        Ok(iter.fold(first, |acc, z| {
            let (p, q) = (acc.dims()[1], z.dims()[1]);
            let outer = acc.reshape([batch, p, 1]).matmul(z.reshape([batch, 1, q])); // [batch, p, q]
            outer.reshape([batch, p * q])
        }))
    }

    fn input_dims(&self) -> Vec<usize> {
        self.d_inputs.clone()
    }

    fn output_dim(&self) -> usize {
        self.d_inputs.iter().map(|d| d + 1).product()
    }
}

/// Sizes of a [`LowRankFusion`].
#[derive(Config, Debug)]
pub struct LowRankFusionConfig {
    /// Widths of the modalities.
    pub d_inputs: Vec<usize>,
    /// Output width `h`.
    pub d_output: usize,
    /// Rank `R` of the factorization.
    pub rank: usize,
}

impl LowRankFusionConfig {
    /// Builds the module with factors drawn so the output's scale does not grow with `R`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LowRankFusion<B>, FusionError> {
        if self.d_inputs.len() < 2 || self.rank == 0 {
            return Err(FusionError::Config(
                "low-rank fusion needs 2+ modalities and rank >= 1".into(),
            ));
        }
        let m = self.d_inputs.len() as f64;
        let factors = self
            .d_inputs
            .iter()
            .map(|&d| {
                let std = ((1.0 + d as f64).powf(-0.5)) * (self.rank as f64).powf(-0.5 / m);
                Param::from_tensor(Tensor::random(
                    [self.rank, 1 + d, self.d_output],
                    Distribution::Normal(0.0, std),
                    device,
                ))
            })
            .collect();
        Ok(LowRankFusion { factors })
    }
}

/// `h = sum_r prod_m (W_m^r [1; z_m])`: `R h sum (1 + d_m)` parameters.
#[derive(Module, Debug)]
pub struct LowRankFusion<B: Backend> {
    /// One factor per modality, `[R, 1 + d_m, h]`.
    factors: Vec<Param<Tensor<B, 3>>>,
}

impl<B: Backend> LowRankFusion<B> {
    /// Builds the module from given factors (each `[R, 1 + d_m, h]`), e.g. a decomposition of a
    /// trained tensor-fusion layer.
    pub fn from_factors(factors: Vec<Tensor<B, 3>>) -> Result<Self, FusionError> {
        let [r, _, h] = factors
            .first()
            .ok_or(FusionError::Count {
                expected: 2,
                got: 0,
            })?
            .dims();
        if factors.iter().any(|f| f.dims()[0] != r || f.dims()[2] != h) {
            return Err(FusionError::Config(
                "factors disagree on rank or output width".into(),
            ));
        }
        Ok(Self {
            factors: factors.into_iter().map(Param::from_tensor).collect(),
        })
    }
}

impl<B: Backend> Fusion<B> for LowRankFusion<B> {
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError> {
        check_inputs(inputs, &self.input_dims())?;
        let [batch, _] = inputs[0].dims();
        let [rank, _, h] = self.factors[0].dims();
        let product = inputs
            .iter()
            .zip(&self.factors)
            .map(|(z, w)| {
                let [_, d1, _] = w.dims();
                let w = w.val().swap_dims(0, 1).reshape([d1, rank * h]); // [1 + d_m, R h]
                append_one(z.clone()).matmul(w).reshape([batch, rank, h]) // [batch, R, h]
            })
            .reduce(|a, b| a * b)
            .expect("two or more modalities");
        Ok(product.sum_dim(1).reshape([batch, h])) // [batch, h]
    }

    fn input_dims(&self) -> Vec<usize> {
        self.factors.iter().map(|w| w.dims()[1] - 1).collect()
    }

    fn output_dim(&self) -> usize {
        self.factors[0].dims()[2]
    }
}
