//! The InfoNCE lower bound on the mutual information of two paired views (van den Oord et al.,
//! 2018; Poole et al., 2019): for a batch of `N` pairs scored by a critic,
//! `I(X; Y) >= log N - L_InfoNCE`, where `L_InfoNCE` is the cross-entropy of picking each true
//! partner among the `N` candidates — CLIP's contrastive loss, one direction at a time.

use burn::tensor::activation::log_softmax;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData, backend::Backend};

use crate::encoder::l2_normalize;
use mm_data::rng::SplitMix64;

/// The bound, averaged over random batches of one size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InfoNceBound {
    /// Pairs per batch, `N`.
    pub batch: usize,
    /// Batches averaged (the remainder that does not fill a batch is left out).
    pub batches: usize,
    /// `log N` in nats: the most any InfoNCE bound with this `N` can show.
    pub log_n: f64,
    /// Mean loss picking the Y of each X (image -> text), nats.
    pub loss_x_to_y: f64,
    /// Mean loss picking the X of each Y (text -> image), nats.
    pub loss_y_to_x: f64,
    /// `log N - L` for X -> Y, nats.
    pub bound_x_to_y: f64,
    /// `log N - L` for Y -> X, nats.
    pub bound_y_to_x: f64,
}

impl InfoNceBound {
    /// The tighter of the two bounds, in bits.
    pub fn best_bits(&self) -> f64 {
        self.bound_x_to_y.max(self.bound_y_to_x) / std::f64::consts::LN_2
    }
}

/// Inputs the bound cannot be computed from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InfoNceError {
    /// The views do not pair up.
    #[error("{x} X embeddings and {y} Y embeddings: the views must pair row by row")]
    Rows {
        /// Rows of X.
        x: usize,
        /// Rows of Y.
        y: usize,
    },
    /// Batch size out of range.
    #[error("batch size {batch} must be between 2 and the number of pairs ({n})")]
    Batch {
        /// Requested batch.
        batch: usize,
        /// Pairs available.
        n: usize,
    },
}

/// The InfoNCE bound of a cosine-similarity critic `scale * cos(x_i, y_j)` (CLIP's), over
/// random batches of `batch` pairs drawn without replacement with `seed`.
///
/// # Shapes
/// - `x`: `[n, d]`, `y`: `[n, d]` (row `i` of each is a pair)
pub fn infonce_bound<B: Backend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    scale: f64,
    batch: usize,
    seed: u64,
) -> Result<InfoNceBound, InfoNceError> {
    let [n, _] = x.dims();
    let [ny, _] = y.dims();
    if n != ny {
        return Err(InfoNceError::Rows { x: n, y: ny });
    }
    if batch < 2 || batch > n {
        return Err(InfoNceError::Batch { batch, n });
    }
    let device = x.device();
    let (x, y) = (l2_normalize(x), l2_normalize(y));
    let mut order: Vec<i64> = (0..n as i64).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let batches = n / batch;
    let (mut loss_xy, mut loss_yx) = (0.0, 0.0);
    let eye = Tensor::<B, 2>::eye(batch, &device);
    for b in 0..batches {
        let idx = TensorData::new(order[b * batch..(b + 1) * batch].to_vec(), [batch]);
        let idx = Tensor::<B, 1, Int>::from_data(idx, &device);
        let xb = x.clone().select(0, idx.clone()); // [N, d]
        let yb = y.clone().select(0, idx); // [N, d]
        let logits = xb.matmul(yb.transpose()).mul_scalar(scale); // [N, N]
        let picked = |log_probs: Tensor<B, 2>| -> f64 {
            let diagonal_sum = (log_probs * eye.clone()).sum().into_scalar().elem::<f64>();
            -diagonal_sum / batch as f64
        };
        loss_xy += picked(log_softmax(logits.clone(), 1));
        loss_yx += picked(log_softmax(logits, 0));
    }
    let (loss_xy, loss_yx) = (loss_xy / batches as f64, loss_yx / batches as f64);
    let log_n = (batch as f64).ln();
    Ok(InfoNceBound {
        batch,
        batches,
        log_n,
        loss_x_to_y: loss_xy,
        loss_y_to_x: loss_yx,
        bound_x_to_y: log_n - loss_xy,
        bound_y_to_x: log_n - loss_yx,
    })
}
