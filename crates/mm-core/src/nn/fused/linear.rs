//! A linear layer on Flex as one GEMM over all rows, and on `Autodiff<Flex>` with a backward
//! of two GEMMs and a column sum.
//!
//! Burn's forward is a matmul into a zeroed, then re-aligned, output and a broadcast bias add;
//! its weight gradient of `[batch, tokens, in]` inputs is a batched matmul into a
//! `[batch, in, out]` intermediate (each batch's transposed input copied first), then a sum
//! over the batch. Here the output starts as the bias rows and the GEMM accumulates onto
//! them; the weight gradient is one `[in, rows] x [rows, out]` GEMM with the transpose as
//! strides.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorMetadata;

use super::flex::{AdTensor, dense, elements, tensor};
use super::gemm::{View, broadcast_rows, column_sums, matmul, product};

/// `x @ w + b` over the last axis of `x`.
pub fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let shape = x.shape();
    let (input, output) = (w.shape()[0], w.shape()[1]);
    let rows = shape.num_elements() / input;
    let (x, w, b) = (dense(x), dense(w), dense(b));
    let mut y = broadcast_rows(elements(&b), rows);
    matmul(
        View::row_major(elements(&x), rows, input),
        View::row_major(elements(&w), input, output),
        &mut y,
        true,
    );
    let mut dims = shape.to_vec();
    *dims.last_mut().expect("rank >= 1") = output;
    tensor(y, dims)
}

/// Gradients of `x`, `w` and `b` from the output's.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// The forward's input and weight.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let (x, w) = ops.state;
        let (input, output) = (w.shape()[0], w.shape()[1]);
        let x_shape = x.shape();
        let rows = x_shape.num_elements() / input;
        let g = View::row_major(elements(&grad), rows, output);
        if let Some(node) = node_w {
            let x = dense(&x);
            let gw = product(View::row_major(elements(&x), rows, input).t(), g);
            grads.register::<Flex>(node.id, tensor(gw, [input, output]));
        }
        if let Some(node) = node_b {
            let gb = column_sums(elements(&grad), output);
            grads.register::<Flex>(node.id, tensor(gb, [output]));
        }
        if let Some(node) = node_x {
            let w = dense(&w);
            let gx = product(g, View::row_major(elements(&w), input, output).t());
            grads.register::<Flex>(node.id, tensor(gx, x_shape));
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
