//! A linear layer whose backward on `Autodiff<Flex>` flattens the batch: Burn's default
//! weight gradient of `[batch, tokens, in]` inputs is a batched matmul into a
//! `[batch, in, out]` intermediate (each batch's transposed input copied first), then a sum
//! over the batch; here it is one `[in, rows] x [rows, out]` GEMM over all rows.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{Shape, TensorMetadata};

use super::flex::AdTensor;

type F = Flex;

/// `x @ w + b` over the last axis of `x`.
fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let shape = x.shape();
    let (input, output) = (w.shape()[0], w.shape()[1]);
    let rows = shape.num_elements() / input;
    let flat = F::float_reshape(x.clone(), Shape::new([rows, input]));
    let y = F::float_matmul(flat, w.clone());
    let y = F::float_add(y, F::float_reshape(b.clone(), Shape::new([1, output])));
    let mut dims = shape.to_vec();
    *dims.last_mut().expect("rank >= 1") = output;
    F::float_reshape(y, Shape::from(dims))
}

/// Gradients of `x`, `w` and `b` from the output's.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// The forward's input and weight.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let (input, output) = (w.shape()[0], w.shape()[1]);
        let x_shape = x.shape();
        let rows = x_shape.num_elements() / input;
        let g = F::float_reshape(grad, Shape::new([rows, output]));
        if let Some(node) = node_w {
            let xt = F::float_transpose(F::float_reshape(x, Shape::new([rows, input])));
            grads.register::<Flex>(node.id, F::float_matmul(xt, g.clone()));
        }
        if let Some(node) = node_b {
            let gb = F::float_reshape(F::float_sum_dim(g.clone(), 0), Shape::new([output]));
            grads.register::<Flex>(node.id, gb);
        }
        if let Some(node) = node_x {
            let gx = F::float_matmul(g, F::float_transpose(w));
            grads.register::<Flex>(node.id, F::float_reshape(gx, x_shape));
        }
    }
}

/// The linear op recorded in the autodiff graph with [`LinearBackward`].
pub fn linear_autodiff(x: AdTensor, w: AdTensor, b: AdTensor) -> AdTensor {
    let nodes = [x.node.clone(), w.node.clone(), b.node.clone()];
    match LinearBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = forward(&x.primitive, &w.primitive, &b.primitive);
            prep.finish((x.primitive, w.primitive), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x.primitive, &w.primitive, &b.primitive)),
    }
}
