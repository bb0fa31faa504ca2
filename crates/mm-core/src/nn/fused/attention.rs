//! Scaled dot-product attention on Flex as batched GEMMs around one parallel softmax pass,
//! and as one differentiable op on `Autodiff<Flex>`.
//!
//! Flex's own attention kernel runs the `batch x heads` heads one after another on one core
//! with a scalar `exp`. Here the scores are one batched GEMM (Flex spreads the heads over
//! rayon's pool), the scale, mask and softmax one parallel pass with a vectorizable `exp`
//! ([`super::softmax`]), and the output one more batched GEMM. In training, the graph keeps
//! only q, k, v and the mask: the backward recomputes the probabilities and applies the
//! softmax-attention gradients directly, where Burn's autodiff would record and replay
//! matmul, scale, mask, softmax and matmul as five nodes with their saved intermediates.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::ops::{BoolTensor, FloatTensorOps};

use super::flex::AdTensor;
use super::softmax::{Mask, softmax_rows, softmax_rows_backward};

/// Score matrices above this many elements (all heads together) go to Flex's own tiled
/// kernel at inference instead of being materialized.
pub const MAX_SCORES: usize = 1 << 26;

/// A Flex bool mask as a [`Mask`] broadcast to `target`; `None` when it does not broadcast.
pub fn flex_mask(mask: &BoolTensor<Flex>, target: [usize; 4]) -> Option<Mask> {
    let mask = mask.to_contiguous();
    let shape = mask.layout().shape();
    if shape.num_dims() != 4 {
        return None;
    }
    let dims = [shape[0], shape[1], shape[2], shape[3]];
    let data = mask.bytes().iter().map(|&b| b != 0).collect();
    Mask::new(data, dims, target)
}

/// A matmul's output, made contiguous if it is not, to be written in place.
fn fresh(x: FlexTensor) -> FlexTensor {
    if x.is_contiguous() && x.layout().start_offset() == 0 {
        x
    } else {
        x.to_contiguous()
    }
}

/// `softmax(scale * q k^T)` with masked keys at 0, as a contiguous `[b, h, q, kv]` tensor.
fn probabilities(q: &FlexTensor, k: &FlexTensor, mask: Option<&Mask>, scale: f64) -> FlexTensor {
    let scores = Flex::float_matmul(q.clone(), Flex::float_swap_dims(k.clone(), 2, 3));
    let mut scores = fresh(scores);
    let cols = scores.layout().shape()[3];
    softmax_rows(scores.storage_mut::<f32>(), cols, scale as f32, mask);
    scores
}

/// Attention's output `[b, h, q, dv]` on Flex primitives.
pub fn forward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    mask: Option<&Mask>,
    scale: f64,
) -> FlexTensor {
    Flex::float_matmul(probabilities(q, k, mask, scale), v.clone())
}

/// What the backward needs: q, k, v, the mask and the scale.
type State = (FlexTensor, FlexTensor, FlexTensor, Option<Mask>, f64);

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let d_out = grads.consume::<Flex>(&ops.node);
        let (q, k, v, mask, scale) = ops.state;
        let p = probabilities(&q, &k, mask.as_ref(), scale);
        if let Some(node) = node_v {
            let p_t = Flex::float_swap_dims(p.clone(), 2, 3);
            grads.register::<Flex>(node.id, Flex::float_matmul(p_t, d_out.clone()));
        }
        let d_p = Flex::float_matmul(d_out, Flex::float_swap_dims(v, 2, 3));
        let mut d_s = fresh(d_p);
        let cols = d_s.layout().shape()[3];
        let p_rows = p
            .as_slice::<f32>()
            .expect("probabilities are contiguous f32");
        softmax_rows_backward(p_rows, d_s.storage_mut::<f32>(), cols, scale as f32);
        if let Some(node) = node_q {
            grads.register::<Flex>(node.id, Flex::float_matmul(d_s.clone(), k));
        }
        if let Some(node) = node_k {
            let d_s_t = Flex::float_swap_dims(d_s, 2, 3);
            grads.register::<Flex>(node.id, Flex::float_matmul(d_s_t, q));
        }
    }
}

/// Attention recorded in the autodiff graph with [`AttentionBackward`].
pub fn attention_autodiff(
    q: AdTensor,
    k: AdTensor,
    v: AdTensor,
    mask: Option<Mask>,
    scale: f64,
) -> AdTensor {
    let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
    match AttentionBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = forward(
                &q.primitive,
                &k.primitive,
                &v.primitive,
                mask.as_ref(),
                scale,
            );
            prep.finish((q.primitive, k.primitive, v.primitive, mask, scale), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(
            &q.primitive,
            &k.primitive,
            &v.primitive,
            mask.as_ref(),
            scale,
        )),
    }
}
