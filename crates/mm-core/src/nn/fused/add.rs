//! `x + y` where `y` repeats over `x`'s leading axes (a residual sum, or position
//! embeddings added to every sequence of a batch), over both cores on Flex.
//!
//! Flex adds on the calling thread, and a broadcast operand goes through its strided
//! iterator one element at a time: the ViT's position embeddings alone were 1.3% of an
//! emoji-CLIP training step, with the second core idle. The backward passes the gradient
//! to `x` as it is and to `y` summed over the repeats (one column sum).

use std::any::TypeId;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use rayon::prelude::*;

use super::flex::{AdFlex, AdTensor, cast, dense, elements, tensor};
use super::gemm::column_sums;
use super::kernels::written;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// `x[i] + y[i % y.len()]` for every element of `x`, written once.
fn forward(x: &FlexTensor, y: &FlexTensor) -> FlexTensor {
    let (x, y) = (dense(x), dense(y));
    let (xs, ys) = (elements(&x), elements(&y));
    let n = ys.len();
    // Tasks start at multiples of `y`'s length, so each walks `y` from its start.
    let task = (CHUNK / n).max(1) * n;
    let out = written(xs.len(), |out| {
        out.par_chunks_mut(task)
            .zip(xs.par_chunks(task))
            .map(|(out, xs)| {
                for (out, xs) in out.chunks_mut(n).zip(xs.chunks(n)) {
                    for ((o, &a), &b) in out.iter_mut().zip(xs).zip(ys) {
                        o.write(a + b);
                    }
                }
                out.len().min(xs.len())
            })
            .sum()
    });
    tensor(out, x.shape())
}

/// The gradients of `x` (the output's) and `y` (summed over the repeats).
#[derive(Debug)]
struct AddBackward;

impl Backward<Flex, 2> for AddBackward {
    /// `y`'s shape.
    type State = Shape;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_y] = ops.parents;
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let y_shape = ops.state;
        if let Some(node) = node_y {
            let gy = if y_shape.num_elements() == grad.shape().num_elements() {
                grad.clone()
            } else {
                tensor(
                    column_sums(elements(&grad), y_shape.num_elements()),
                    y_shape,
                )
            };
            grads.register::<Flex>(node.id, gy);
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, grad);
        }
    }
}

fn add_autodiff(x: AdTensor, y: AdTensor) -> AdTensor {
    match AddBackward
        .prepare::<NoCheckpointing>([x.node.clone(), y.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let out = forward(&x.primitive, &y.primitive);
            prep.finish(y.primitive.shape(), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x.primitive, &y.primitive)),
    }
}

/// [`super::add`] when `B` is `Flex` or `Autodiff<Flex>`, both are `f32` and `y`'s axes
/// are 1 up to some axis and equal to `x`'s from there on; `Err((x, y))` otherwise.
#[allow(clippy::type_complexity)]
pub fn add<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    y: Tensor<B, D>,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    let is_flex = TypeId::of::<B>() == TypeId::of::<Flex>();
    let is_ad_flex = TypeId::of::<B>() == TypeId::of::<AdFlex>();
    if !(is_flex || is_ad_flex)
        || x.dtype() != DType::F32
        || y.dtype() != DType::F32
        || !repeats_over_leading_axes(&x.dims(), &y.dims())
    {
        return Err((x, y));
    }
    let (x, y) = (x.into_primitive().tensor(), y.into_primitive().tensor());
    let out: FloatTensor<B> = if is_flex {
        let raw = |t: FloatTensor<B>| -> FlexTensor { cast(t).expect("B is Flex") };
        cast(forward(&raw(x), &raw(y))).expect("B is Flex")
    } else {
        let ad = |t: FloatTensor<B>| -> AdTensor { cast(t).expect("B is Autodiff<Flex>") };
        cast(add_autodiff(ad(x), ad(y))).expect("B is Autodiff<Flex>")
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// True when `y` is 1 on `x`'s leading axes up to some axis and equal to `x` after it, so
/// its elements repeat in order over `x`'s; and neither is empty.
fn repeats_over_leading_axes(x: &[usize], y: &[usize]) -> bool {
    let lead = y.iter().take_while(|&&d| d == 1).count();
    x.iter().all(|&d| d > 0) && x.len() == y.len() && x[lead..] == y[lead..]
}

#[cfg(test)]
mod tests {
    use super::repeats_over_leading_axes as repeats;

    #[test]
    fn only_repeats_over_leading_axes_qualify() {
        assert!(repeats(&[4, 5, 6], &[4, 5, 6]));
        assert!(repeats(&[4, 5, 6], &[1, 5, 6]));
        assert!(repeats(&[4, 5, 6], &[1, 1, 6]));
        assert!(repeats(&[4, 5, 6], &[1, 1, 1]));
        assert!(!repeats(&[4, 5, 6], &[4, 1, 6]));
        assert!(!repeats(&[4, 5, 6], &[1, 5, 1]));
        assert!(!repeats(&[4, 0, 6], &[1, 0, 6]));
    }
}
