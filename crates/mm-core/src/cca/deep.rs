//! The deep CCA objective (Andrew et al., 2013) as a differentiable loss on any backend.
//!
//! The loss is minus the sum of the top-k canonical correlations of two encoders' outputs.
//! Burn has no differentiable SVD, so the gradient comes from the envelope theorem instead:
//! each canonical pair `(a_i, b_i)` is a critical point of
//!
//! ```text
//! f(a, b; S) = a^T Sxy b / sqrt(a^T Sxx a * b^T Syy b)
//! ```
//!
//! and `rho_i(S) = f(a_i, b_i; S)`. Since `df/da = df/db = 0` there, `d rho_i / dS` equals the
//! partial derivative of `f` with `(a_i, b_i)` held fixed. So the pairs are solved on the host
//! (detached, as in linear CCA) and `f` is evaluated with ordinary tensor ops, which autodiff
//! differentiates exactly; the value is the canonical correlations themselves. Like any
//! spectral gradient it is undefined where `rho_k = rho_{k+1}`.

use burn::config::Config;
use burn::tensor::{Tensor, backend::Backend};

use super::covariance::{covariances, to_device};
use super::{CcaError, solve};

/// Settings of the deep CCA loss.
#[derive(Config, Debug)]
pub struct DeepCcaLossConfig {
    /// How many canonical correlations the objective sums.
    pub k: usize,
    /// Ridge added to both auto-covariances (keeps the whitening well conditioned).
    #[config(default = 1e-3)]
    pub ridge: f64,
}

impl DeepCcaLossConfig {
    /// The loss with these settings.
    pub fn init(&self) -> DeepCcaLoss {
        DeepCcaLoss {
            k: self.k,
            ridge: self.ridge,
        }
    }
}

/// Minus the sum of the top-k canonical correlations of two batches of features.
#[derive(Debug, Clone)]
pub struct DeepCcaLoss {
    k: usize,
    ridge: f64,
}

impl DeepCcaLoss {
    /// The top-k canonical correlations, differentiable with respect to both inputs.
    ///
    /// # Shapes
    /// - `hx`: `[n, o_x]`, `hy`: `[n, o_y]` -> `[k]`
    pub fn correlations<B: Backend>(
        &self,
        hx: Tensor<B, 2>,
        hy: Tensor<B, 2>,
    ) -> Result<Tensor<B, 1>, CcaError> {
        // Host: canonical pairs of the detached batch (also checks shapes and finiteness).
        let stats = covariances(hx.clone().detach(), hy.clone().detach())?;
        let pairs = solve::solve(&stats, self.k, self.ridge)?;
        let device = hx.device();
        let a = to_device::<B>(&pairs.wx, &device); // [o_x, k], constant
        let b = to_device::<B>(&pairs.wy, &device); // [o_y, k], constant

        // Device: the same statistics, now tracked by autodiff.
        let [n, ox] = hx.dims();
        let [_, oy] = hy.dims();
        let scale = 1.0 / (n as f64 - 1.0);
        let xc = hx.clone() - hx.mean_dim(0); // [n, o_x]
        let yc = hy.clone() - hy.mean_dim(0); // [n, o_y]
        let ridge_x = Tensor::<B, 2>::eye(ox, &device).mul_scalar(self.ridge);
        let ridge_y = Tensor::<B, 2>::eye(oy, &device).mul_scalar(self.ridge);
        let sxx = xc.clone().transpose().matmul(xc.clone()).mul_scalar(scale) + ridge_x;
        let syy = yc.clone().transpose().matmul(yc.clone()).mul_scalar(scale) + ridge_y;
        let sxy = xc.transpose().matmul(yc).mul_scalar(scale); // [o_x, o_y]

        // f(a_i, b_i; S) for every pair at once: column-wise quadratic forms.
        let num = (a.clone() * sxy.matmul(b.clone())).sum_dim(0); // [1, k]
        let var_x = (a.clone() * sxx.matmul(a)).sum_dim(0); // [1, k]
        let var_y = (b.clone() * syy.matmul(b)).sum_dim(0); // [1, k]
        Ok((num / (var_x * var_y).sqrt()).reshape([self.k]))
    }

    /// The loss: minus the sum of the top-k canonical correlations.
    ///
    /// # Shapes
    /// - `hx`: `[n, o_x]`, `hy`: `[n, o_y]` -> `[1]`
    pub fn forward<B: Backend>(
        &self,
        hx: Tensor<B, 2>,
        hy: Tensor<B, 2>,
    ) -> Result<Tensor<B, 1>, CcaError> {
        Ok(self.correlations(hx, hy)?.sum().neg())
    }
}
