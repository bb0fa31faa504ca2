//! Fusion strategies: one embedding per modality in, one fused representation out.
//!
//! | strategy | module | output width | parameters |
//! |---|---|---|---|
//! | early (concatenation) | [`EarlyFusion`] | `h` | `(sum d_m) h + h` |
//! | late, sum or product | [`LateFusion`] | `h` | `sum (d_m h + h)` |
//! | bilinear | [`BilinearFusion`] | `h` | `d_x d_y h + h` |
//! | cross-modal attention | [`CrossModalAttention`] | `h` | `(d_q + 2 d_k + h) h + 4h + n_q d_q + n_k d_k` |
//! | tensor (outer product with 1) | [`TensorFusion`] | `prod (1 + d_m)` | 0 |
//! | low-rank tensor | [`LowRankFusion`] | `h` | `R h sum (1 + d_m)` |
//!
//! For attention, `d_q`/`d_k` are token widths and `n_q`/`n_k` token counts. The low-rank count is the guide's `R (d_X + d_Y + d_Z)` per output unit, with the appended
//! 1 of each modality counted (Liu et al., 2018).

mod attention;
pub mod benchmark;
mod bilinear;
mod early;
mod late;
mod tensor;

pub use attention::{CrossModalAttention, CrossModalAttentionConfig};
pub use bilinear::{BilinearFusion, BilinearFusionConfig};
pub use early::{EarlyFusion, EarlyFusionConfig};
pub use late::{LateFusion, LateFusionConfig, LateMode};
pub use tensor::{LowRankFusion, LowRankFusionConfig, TensorFusion, TensorFusionConfig};

use burn::tensor::{Tensor, backend::Backend};

/// Inputs that do not fit a fusion module.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FusionError {
    /// Wrong number of modalities.
    #[error("this fusion takes {expected} modalities, got {got}")]
    Count {
        /// Modalities the module was built for.
        expected: usize,
        /// Modalities given.
        got: usize,
    },
    /// A modality of the wrong width.
    #[error("modality {index} has width {got}, the fusion was built for {expected}")]
    Width {
        /// Position of the modality.
        index: usize,
        /// Width the module was built for.
        expected: usize,
        /// Width given.
        got: usize,
    },
    /// Modalities with different batch sizes.
    #[error("modality {index} has {got} samples, modality 0 has {expected}")]
    Batch {
        /// Position of the modality.
        index: usize,
        /// Batch of modality 0.
        expected: usize,
        /// Batch given.
        got: usize,
    },
    /// A configuration that cannot be built.
    #[error("invalid fusion configuration: {0}")]
    Config(String),
}

/// Two or more embeddings in, one fused representation out.
pub trait Fusion<B: Backend> {
    /// Fuses one embedding per modality.
    ///
    /// # Shapes
    /// - `inputs[m]`: `[batch, input_dims()[m]]`
    /// - output: `[batch, output_dim()]`
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError>;

    /// Widths of the modalities, in order.
    fn input_dims(&self) -> Vec<usize>;

    /// Width of the fused representation.
    fn output_dim(&self) -> usize;
}

/// Checks count, widths and batch sizes against `dims`.
pub fn check_inputs<B: Backend>(
    inputs: &[Tensor<B, 2>],
    dims: &[usize],
) -> Result<(), FusionError> {
    if inputs.len() != dims.len() {
        return Err(FusionError::Count {
            expected: dims.len(),
            got: inputs.len(),
        });
    }
    let batch = inputs[0].dims()[0];
    for (index, (t, &expected)) in inputs.iter().zip(dims).enumerate() {
        let [b, d] = t.dims();
        if d != expected {
            return Err(FusionError::Width {
                index,
                expected,
                got: d,
            });
        }
        if b != batch {
            return Err(FusionError::Batch {
                index,
                expected: batch,
                got: b,
            });
        }
    }
    Ok(())
}

/// `[1; z]`: a column of ones before the features (tensor fusion's bias trick).
///
/// # Shapes
/// - `z`: `[batch, d]` -> `[batch, 1 + d]`
pub fn append_one<B: Backend>(z: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, _] = z.dims();
    let ones = Tensor::<B, 2>::ones([batch, 1], &z.device());
    Tensor::cat(vec![ones, z], 1)
}
