//! The host half of linear CCA: the guide's generalized eigenproblem on `d x d` covariances,
//! solved in `f64` with `nalgebra`.
//!
//! Hotelling's problem `Cxy Cyy^-1 Cyx w = rho^2 Cxx w` becomes a standard one after Cholesky
//! whitening: with `Cxx = Lx Lx^T` and `Cyy = Ly Ly^T`, the singular values of
//! `K = Lx^-1 Cxy Ly^-T` are the canonical correlations (their squares are the generalized
//! eigenvalues) and `w_x = Lx^-T u`, `w_y = Ly^-T v` for the singular vectors `u`, `v`. The
//! directions then satisfy `W_x^T (Cxx + rI) W_x = I` (unit-variance variates), like the
//! eigenvectors `scipy.linalg.eigh(a, b)` returns.

use nalgebra::{Cholesky, DMatrix, SVD};

use super::CcaError;
use super::covariance::Covariances;
use mm_data::matrix::HostMatrix;

/// Top-k canonical correlations and both direction matrices.
#[derive(Debug, Clone)]
pub struct Solution {
    /// `rho_1 >= ... >= rho_k`, each in `[0, 1]`.
    pub correlations: Vec<f64>,
    /// X directions as columns, `d_x x k`.
    pub wx: HostMatrix,
    /// Y directions as columns, `d_y x k`.
    pub wy: HostMatrix,
}

/// Solves CCA for the top `k` pairs with `ridge` added to both auto-covariances' diagonals.
pub fn solve(cov: &Covariances, k: usize, ridge: f64) -> Result<Solution, CcaError> {
    let (dx, dy) = (cov.cxx.rows, cov.cyy.rows);
    if !(ridge >= 0.0 && ridge.is_finite()) {
        return Err(CcaError::InvalidRidge(ridge));
    }
    if k == 0 || k > dx.min(dy) {
        return Err(CcaError::InvalidK { k, max: dx.min(dy) });
    }
    if ridge == 0.0 {
        let d = dx.max(dy);
        if cov.n <= d {
            return Err(CcaError::TooFewSamples {
                n: cov.n,
                d,
                ridge: true,
            });
        }
        check_constant_columns(&cov.cxx, &cov.mean_x, "X")?;
        check_constant_columns(&cov.cyy, &cov.mean_y, "Y")?;
    }
    let lx = cholesky(&cov.cxx, ridge, "X")?;
    let ly = cholesky(&cov.cyy, ridge, "Y")?;
    let cxy = to_na(&cov.cxy);
    // K = Lx^-1 Cxy Ly^-T, computed as (Ly^-1 (Lx^-1 Cxy)^T)^T.
    let left = lx
        .solve_lower_triangular(&cxy)
        .expect("Cholesky factor is invertible");
    let k_mat = ly
        .solve_lower_triangular(&left.transpose())
        .expect("Cholesky factor is invertible")
        .transpose(); // [d_x, d_y]
    let svd = SVD::new(k_mat, true, true);
    let (u, v_t) = (svd.u.expect("u requested"), svd.v_t.expect("v_t requested"));
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let order = &order[..k];
    let u_k = DMatrix::from_fn(dx, k, |r, c| u[(r, order[c])]);
    let v_k = DMatrix::from_fn(dy, k, |r, c| v_t[(order[c], r)]);
    let mut wx = lx.tr_solve_lower_triangular(&u_k).expect("invertible");
    let mut wy = ly.tr_solve_lower_triangular(&v_k).expect("invertible");
    // One sign per pair, fixed so that each X direction's largest entry is positive.
    for c in 0..k {
        let col = wx.column(c);
        let peak = col
            .iter()
            .copied()
            .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if peak < 0.0 {
            wx.column_mut(c).neg_mut();
            wy.column_mut(c).neg_mut();
        }
    }
    let correlations = order
        .iter()
        .map(|&i| svd.singular_values[i].clamp(0.0, 1.0))
        .collect();
    Ok(Solution {
        correlations,
        wx: from_na(&wx),
        wy: from_na(&wy),
    })
}

/// `L` with `C + ridge I = L L^T`, or a named error when the matrix is not positive definite.
fn cholesky(c: &HostMatrix, ridge: f64, view: &'static str) -> Result<DMatrix<f64>, CcaError> {
    let mut m = to_na(c);
    for i in 0..m.nrows() {
        m[(i, i)] += ridge;
    }
    Cholesky::new(m)
        .map(|ch| ch.l())
        .ok_or(CcaError::NotPositiveDefinite { view, ridge })
}

/// A column whose variance is zero, or below what `f32` can resolve at its mean, is constant.
fn check_constant_columns(
    c: &HostMatrix,
    mean: &[f64],
    view: &'static str,
) -> Result<(), CcaError> {
    for (j, m) in mean.iter().enumerate() {
        let var = c.get(j, j);
        if var <= 1e-12 * m * m || var <= f64::MIN_POSITIVE {
            return Err(CcaError::ConstantColumn {
                view,
                col: j,
                value: *m,
            });
        }
    }
    Ok(())
}

/// A host matrix as an `nalgebra` matrix.
pub(crate) fn to_na(m: &HostMatrix) -> DMatrix<f64> {
    DMatrix::from_row_slice(m.rows, m.cols, &m.data)
}

/// An `nalgebra` matrix as a host matrix.
pub(crate) fn from_na(m: &DMatrix<f64>) -> HostMatrix {
    let data = (0..m.nrows())
        .flat_map(|r| (0..m.ncols()).map(move |c| m[(r, c)]))
        .collect();
    HostMatrix {
        rows: m.nrows(),
        cols: m.ncols(),
        data,
    }
}
