//! The localizer's losses over a step's `[scenes, sounds]` scores ([`PairLoss`]).

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use super::localizer_train::PairLoss;

/// `log(1 + e^x)`, stable for large `|x|`.
fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    relu(x.clone()) + (x.abs().neg().exp() + 1.0).log()
}

/// `log sum_j exp(x_j)` along `dim`, kept as a size-1 dimension.
fn log_sum_exp<B: Backend>(x: Tensor<B, 2>, dim: usize) -> Tensor<B, 2> {
    let peak = x.clone().max_dim(dim).detach();
    (x - peak.clone()).exp().sum_dim(dim).log() + peak
}

/// The mean over rows (`dim` 1) or columns (`dim` 0) of `-log` of the softmax mass that falls
/// on the positives (`y` = 1; every row and column has at least its own diagonal pair).
pub(crate) fn positives_nll<B: Backend>(
    logits: Tensor<B, 2>,
    y: Tensor<B, 2>,
    dim: usize,
) -> Tensor<B, 1> {
    // Negatives pushed far down leave only the positives in the first sum.
    let positives = logits.clone() + (y - 1.0) * 1e4;
    (log_sum_exp(logits, dim) - log_sum_exp(positives, dim)).mean()
}

/// The training loss of a step's `[scenes, sounds]` scores (`logits`) given which sound is of
/// a stamp in which scene (`present`, 1 or 0; the diagonal is always 1).
pub fn pair_loss<B: Backend>(
    logits: Tensor<B, 2>,
    present: Tensor<B, 2>,
    kind: PairLoss,
) -> Tensor<B, 1> {
    match kind {
        PairLoss::Bce => (softplus(logits.clone().neg()) * present.clone()
            + softplus(logits) * (present.neg() + 1.0))
            .mean(),
        PairLoss::Contrastive => {
            (positives_nll(logits.clone(), present.clone(), 1) + positives_nll(logits, present, 0))
                / 2.0
        }
    }
}
