//! Canonical correlation analysis: linear CCA with a ridge term, the data it is checked on,
//! and the deep CCA objective.
//!
//! - [`covariance`]: the views' covariances, computed on the device.
//! - [`solve`]: the guide's generalized eigenproblem, solved on the host with `nalgebra`.
//! - [`deep`]: the deep CCA loss, differentiable under `Autodiff<B>` on every backend.
//!
//! ```text
//! x [n, d_x], y [n, d_y] --(device)--> Cxx, Cyy, Cxy --(host, f64)--> rho, W_x, W_y
//! new x --(device)--> (x - mean_x) W_x
//! ```

pub mod covariance;
pub mod deep;
pub mod experiment;
pub mod solve;

use std::path::Path;

use burn::config::Config;
use burn::tensor::{Tensor, backend::Backend};

use covariance::{covariances, to_device};
use mm_data::matrix::{HostMatrix, MatrixError, write_npy_f64};

/// Why CCA could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CcaError {
    /// X and Y must pair samples row by row.
    #[error("X has {x} rows and Y has {y}: the views must pair samples row by row")]
    RowMismatch {
        /// Rows of X.
        x: usize,
        /// Rows of Y.
        y: usize,
    },
    /// Without a ridge, the covariances are singular unless there are more samples than
    /// dimensions.
    #[error(
        "{n} samples for {d} dimensions: covariances need more samples than dimensions{}",
        if *ridge { " (or pass a ridge > 0 for a regularized answer)" } else { "" }
    )]
    TooFewSamples {
        /// Samples.
        n: usize,
        /// Largest dimension.
        d: usize,
        /// Whether a ridge would make the problem solvable.
        ridge: bool,
    },
    /// A NaN or infinity in the data.
    #[error("{view}[{row}, {col}] is {value}: CCA needs finite values")]
    NonFinite {
        /// `"X"` or `"Y"`.
        view: &'static str,
        /// Row of the first bad value.
        row: usize,
        /// Column of the first bad value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// A column with no variance makes the covariance singular.
    #[error(
        "column {col} of {view} is constant ({value}): drop it, or pass a ridge > 0 for a regularized answer"
    )]
    ConstantColumn {
        /// `"X"` or `"Y"`.
        view: &'static str,
        /// The column.
        col: usize,
        /// Its (constant) value.
        value: f64,
    },
    /// Linearly dependent columns.
    #[error(
        "Cov({view}, {view}) + {ridge} I is not positive definite (linearly dependent columns?): pass a larger ridge"
    )]
    NotPositiveDefinite {
        /// `"X"` or `"Y"`.
        view: &'static str,
        /// The ridge used.
        ridge: f64,
    },
    /// `k` out of range.
    #[error("k = {k} canonical pairs requested; it must be between 1 and min(d_x, d_y) = {max}")]
    InvalidK {
        /// Requested pairs.
        k: usize,
        /// `min(d_x, d_y)`.
        max: usize,
    },
    /// The ridge must be finite and non-negative.
    #[error("ridge {0} must be finite and >= 0")]
    InvalidRidge(f64),
    /// Data of the wrong width for a fitted model.
    #[error("the model was fitted on {expected} columns, this data has {got}")]
    Width {
        /// Fitted width.
        expected: usize,
        /// Given width.
        got: usize,
    },
    /// Writing the projections failed.
    #[error(transparent)]
    Io(#[from] MatrixError),
    /// The deep CCA run could not start or finish (run folder, settings).
    #[error(transparent)]
    Training(#[from] crate::train::TrainError),
    /// The deep CCA loss could not be computed at a step (non-finite or degenerate encoder
    /// outputs after a divergence).
    #[error(
        "training diverged: the deep CCA loss could not be computed at step {step}; lower the learning rate"
    )]
    Diverged {
        /// The step (1-based).
        step: usize,
    },
}

/// Linear CCA: `k` canonical pairs, `ridge` added to the diagonals of `Cov(X,X)` and `Cov(Y,Y)`.
///
/// With `ridge = 0` the answer is the classical one and degenerate data (too few samples, a
/// constant column) is an error; with `ridge > 0` it is the regularized answer of
/// `(Cxx + rI)^-1 Cxy (Cyy + rI)^-1 Cyx w = rho^2 w`, and degenerate data is allowed.
#[derive(Config, Debug)]
pub struct LinearCcaConfig {
    /// Canonical pairs to keep.
    pub k: usize,
    /// Ridge added to both auto-covariances.
    #[config(default = 0.0)]
    pub ridge: f64,
}

impl LinearCcaConfig {
    /// Fits on paired views: covariances on their device, the eigenproblem on the host.
    ///
    /// # Shapes
    /// - `x`: `[n, d_x]`, `y`: `[n, d_y]`
    pub fn fit<B: Backend>(&self, x: Tensor<B, 2>, y: Tensor<B, 2>) -> Result<Cca, CcaError> {
        let cov = covariances(x, y)?;
        let sol = solve::solve(&cov, self.k, self.ridge)?;
        Ok(Cca {
            correlations: sol.correlations,
            mean_x: cov.mean_x,
            mean_y: cov.mean_y,
            wx: sol.wx,
            wy: sol.wy,
        })
    }
}

/// A fitted linear CCA.
#[derive(Debug, Clone)]
pub struct Cca {
    /// Canonical correlations on the training data, descending.
    pub correlations: Vec<f64>,
    /// Column means of the training X.
    pub mean_x: Vec<f64>,
    /// Column means of the training Y.
    pub mean_y: Vec<f64>,
    /// X directions as columns, `d_x x k`.
    pub wx: HostMatrix,
    /// Y directions as columns, `d_y x k`.
    pub wy: HostMatrix,
}

impl Cca {
    /// Projects new X samples onto the canonical directions, on the tensor's device.
    ///
    /// # Shapes
    /// - `x`: `[n, d_x]` -> `[n, k]`
    pub fn transform_x<B: Backend>(&self, x: Tensor<B, 2>) -> Result<Tensor<B, 2>, CcaError> {
        project(x, &self.mean_x, &self.wx)
    }

    /// Projects new Y samples onto the canonical directions, on the tensor's device.
    ///
    /// # Shapes
    /// - `y`: `[n, d_y]` -> `[n, k]`
    pub fn transform_y<B: Backend>(&self, y: Tensor<B, 2>) -> Result<Tensor<B, 2>, CcaError> {
        project(y, &self.mean_y, &self.wy)
    }

    /// Writes `wx.npy`, `wy.npy`, `mean_x.npy`, `mean_y.npy` (float64) and
    /// `correlations.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), CcaError> {
        let io = |e: std::io::Error| {
            CcaError::Io(MatrixError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        write_npy_f64(&dir.join("wx.npy"), &self.wx)?;
        write_npy_f64(&dir.join("wy.npy"), &self.wy)?;
        let row = |v: &Vec<f64>| HostMatrix::new(1, v.len(), v.clone()).expect("one row");
        write_npy_f64(&dir.join("mean_x.npy"), &row(&self.mean_x))?;
        write_npy_f64(&dir.join("mean_y.npy"), &row(&self.mean_y))?;
        let json = serde_json::json!({ "correlations": self.correlations });
        mm_data::fs::atomic_write(&dir.join("correlations.json"), json.to_string().as_bytes())
            .map_err(io)
    }
}

/// `(data - mean) W` on the data's device.
fn project<B: Backend>(
    data: Tensor<B, 2>,
    mean: &[f64],
    w: &HostMatrix,
) -> Result<Tensor<B, 2>, CcaError> {
    let [_, d] = data.dims();
    if d != w.rows {
        return Err(CcaError::Width {
            expected: w.rows,
            got: d,
        });
    }
    let device = data.device();
    let mean = HostMatrix::new(1, mean.len(), mean.to_vec()).expect("one row");
    let centred = data - to_device::<B>(&mean, &device); // [n, d]
    Ok(centred.matmul(to_device::<B>(w, &device))) // [n, k]
}
