//! Sample covariances of two views, computed on the device and checked before any solve.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::CcaError;
use mm_data::matrix::HostMatrix;

/// The second-order statistics CCA needs, copied to the host in `f64`.
///
/// Covariances use the unbiased `n - 1` denominator (as `numpy.cov`); the ridge is *not* added
/// here, so the same statistics serve any ridge.
#[derive(Debug, Clone)]
pub struct Covariances {
    /// Number of samples.
    pub n: usize,
    /// Column means of X, `[d_x]`.
    pub mean_x: Vec<f64>,
    /// Column means of Y, `[d_y]`.
    pub mean_y: Vec<f64>,
    /// `Cov(X, X)`, `d_x x d_x`.
    pub cxx: HostMatrix,
    /// `Cov(Y, Y)`, `d_y x d_y`.
    pub cyy: HostMatrix,
    /// `Cov(X, Y)`, `d_x x d_y`.
    pub cxy: HostMatrix,
}

/// Checks both views (matching rows, enough samples, finite values) and computes their
/// covariances on the tensors' device.
///
/// # Shapes
/// - `x`: `[n, d_x]`, `y`: `[n, d_y]`
pub fn covariances<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>) -> Result<Covariances, CcaError> {
    let [n, _] = x.dims();
    let [ny, _] = y.dims();
    if n != ny {
        return Err(CcaError::RowMismatch { x: n, y: ny });
    }
    if n < 2 {
        return Err(CcaError::TooFewSamples {
            n,
            d: 1,
            ridge: false,
        });
    }
    check_finite(&x, "X")?;
    check_finite(&y, "Y")?;
    let mean_x = x.clone().mean_dim(0); // [1, d_x]
    let mean_y = y.clone().mean_dim(0); // [1, d_y]
    let xc = x - mean_x.clone();
    let yc = y - mean_y.clone();
    let scale = 1.0 / (n as f64 - 1.0);
    let cxx = xc.clone().transpose().matmul(xc.clone()).mul_scalar(scale); // [d_x, d_x]
    let cyy = yc.clone().transpose().matmul(yc.clone()).mul_scalar(scale); // [d_y, d_y]
    let cxy = xc.transpose().matmul(yc).mul_scalar(scale); // [d_x, d_y]
    Ok(Covariances {
        n,
        mean_x: to_host(mean_x).data,
        mean_y: to_host(mean_y).data,
        cxx: to_host(cxx),
        cyy: to_host(cyy),
        cxy: to_host(cxy),
    })
}

/// Copies a 2-D float tensor to a host matrix.
pub fn to_host<B: Backend>(t: Tensor<B, 2>) -> HostMatrix {
    let [rows, cols] = t.dims();
    let data = t
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("a float tensor converts to f64");
    HostMatrix { rows, cols, data }
}

/// Builds a `[rows, cols]` tensor from a host matrix, in the backend's float precision.
pub fn to_device<B: Backend>(m: &HostMatrix, device: &B::Device) -> Tensor<B, 2> {
    let data = TensorData::new(m.data.clone(), [m.rows, m.cols]).convert::<B::FloatElem>();
    Tensor::from_data(data, device)
}

/// Errors with the first non-finite entry's position, if any.
fn check_finite<B: Backend>(t: &Tensor<B, 2>, view: &'static str) -> Result<(), CcaError> {
    let bad = t.clone().is_finite().bool_not().any().into_data();
    if !bad.iter::<bool>().next().unwrap_or(false) {
        return Ok(());
    }
    let host = to_host(t.clone());
    let at = host.data.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(CcaError::NonFinite {
        view,
        row: at / host.cols.max(1),
        col: at % host.cols.max(1),
        value: host.data.get(at).copied().unwrap_or(f64::NAN),
    })
}
