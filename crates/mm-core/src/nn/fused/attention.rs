//! Scaled dot-product attention on Flex as batched GEMMs around one parallel softmax pass,
//! and as one differentiable op on `Autodiff<Flex>`.
//!
//! Flex's own attention kernel runs the `batch x heads` heads one after another on one core
//! with a scalar `exp`. Here the scores are one batched GEMM (the heads spread over rayon's
//! pool, transposes as strides, [`super::gemm`]), the scale, mask and softmax one parallel
//! pass with a vectorizable `exp` ([`super::softmax`]), and the output one more batched
//! GEMM. In training, the graph keeps only q, k, v and the mask: the backward recomputes the
//! probabilities and applies the softmax-attention gradients directly, where Burn's autodiff
//! would record and replay matmul, scale, mask, softmax and matmul as five nodes with their
//! saved intermediates.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorMetadata;
use burn::tensor::ops::BoolTensor;

use super::flex::{AdTensor, dense, elements, tensor};
use super::gemm::{View, batched_product};
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

/// The `[b, h, t, d]` dims of an attention operand.
fn dims4(x: &FlexTensor) -> [usize; 4] {
    let s = x.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Block `i` of `data`, `r x c` row-major (transposed when `t`, stored as `c x r`).
fn block(data: &[f32], i: usize, r: usize, c: usize, t: bool) -> View<'_> {
    if t {
        View::row_major(&data[i * r * c..], c, r).t()
    } else {
        View::row_major(&data[i * r * c..], r, c)
    }
}

/// `batch` products of `rows x inner` blocks of `a` with `inner x cols` blocks of `b`
/// (each transposed first when its flag says so), into a new row-major buffer.
fn products(
    (a, a_t): (&[f32], bool),
    (b, b_t): (&[f32], bool),
    batch: usize,
    [rows, inner, cols]: [usize; 3],
) -> Vec<f32> {
    batched_product(
        batch,
        |i| block(a, i, rows, inner, a_t),
        |i| block(b, i, inner, cols, b_t),
        [rows, cols],
    )
}

/// `softmax(scale * q k^T)` with masked keys at 0, as a contiguous `[b, h, q, kv]` buffer.
fn probabilities(q: &FlexTensor, k: &FlexTensor, mask: Option<&Mask>, scale: f64) -> Vec<f32> {
    let ([b, h, tq, d], [_, _, tk, _]) = (dims4(q), dims4(k));
    let (q, k) = (dense(q), dense(k));
    let mut scores = products(
        (elements(&q), false),
        (elements(&k), true),
        b * h,
        [tq, d, tk],
    );
    softmax_rows(&mut scores, tk, scale as f32, mask);
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
    let ([b, h, tq, _], [_, _, tk, dv]) = (dims4(q), dims4(v));
    let p = probabilities(q, k, mask, scale);
    let v = dense(v);
    let out = products((&p, false), (elements(&v), false), b * h, [tq, tk, dv]);
    tensor(out, [b, h, tq, dv])
}

/// What the backward needs: q, k, v, the mask and the scale.
type State = (FlexTensor, FlexTensor, FlexTensor, Option<Mask>, f64);

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let d_out = dense(&grads.consume::<Flex>(&ops.node));
        let (q, k, v, mask, scale) = ops.state;
        let ([b, h, tq, d], [_, _, tk, dv]) = (dims4(&q), dims4(&v));
        let bh = b * h;
        let p = probabilities(&q, &k, mask.as_ref(), scale);
        let (q, k, v) = (dense(&q), dense(&k), dense(&v));
        if let Some(node) = node_v {
            let d_v = products((&p, true), (elements(&d_out), false), bh, [tk, tq, dv]);
            grads.register::<Flex>(node.id, tensor(d_v, [b, h, tk, dv]));
        }
        let mut d_s = products(
            (elements(&d_out), false),
            (elements(&v), true),
            bh,
            [tq, dv, tk],
        );
        softmax_rows_backward(&p, &mut d_s, tk, scale as f32);
        if let Some(node) = node_q {
            let d_q = products((&d_s, false), (elements(&k), false), bh, [tq, tk, d]);
            grads.register::<Flex>(node.id, tensor(d_q, [b, h, tq, d]));
        }
        if let Some(node) = node_k {
            let d_k = products((&d_s, true), (elements(&q), false), bh, [tk, tq, d]);
            grads.register::<Flex>(node.id, tensor(d_k, [b, h, tk, d]));
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
