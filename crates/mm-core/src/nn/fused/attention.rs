//! Scaled dot-product attention as one differentiable op on `Autodiff<Flex>`: the forward is
//! Flex's fused attention kernel (no `[batch, heads, t, t]` tensors kept for the graph), the
//! backward recomputes the probabilities from q and k and applies the softmax-attention
//! gradients directly, where Burn's autodiff would record and replay matmul, scale, mask,
//! softmax and matmul as five nodes with their saved intermediates.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::activation::softmax;
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, ModuleOps};
use burn::tensor::{Bool, Tensor, TensorPrimitive};

use super::flex::AdTensor;

type T4 = Tensor<Flex, 4>;

fn t4(x: FlexTensor) -> T4 {
    Tensor::from_primitive(TensorPrimitive::Float(x))
}

fn raw(x: T4) -> FlexTensor {
    x.into_primitive().tensor()
}

/// What the backward needs: q, k, v, the mask and the scale.
type State = (
    FlexTensor,
    FlexTensor,
    FlexTensor,
    Option<BoolTensor<Flex>>,
    f64,
);

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let d_out = t4(grads.consume::<Flex>(&ops.node));
        let (q, k, v, mask, scale) = ops.state;
        let (q, k, v) = (t4(q), t4(k), t4(v));
        let scores = q.clone().matmul(k.clone().swap_dims(2, 3)) * scale;
        let scores = match mask {
            Some(m) => scores.mask_fill(
                Tensor::<Flex, 4, Bool>::from_primitive(m),
                f32::NEG_INFINITY,
            ),
            None => scores,
        };
        let p = softmax(scores, 3);
        if let Some(node) = node_v {
            grads.register::<Flex>(
                node.id,
                raw(p.clone().swap_dims(2, 3).matmul(d_out.clone())),
            );
        }
        let d_p = d_out.matmul(v.swap_dims(2, 3));
        let row = (d_p.clone() * p.clone()).sum_dim(3);
        let d_s = p * (d_p - row) * scale;
        if let Some(node) = node_q {
            grads.register::<Flex>(node.id, raw(d_s.clone().matmul(k)));
        }
        if let Some(node) = node_k {
            grads.register::<Flex>(node.id, raw(d_s.swap_dims(2, 3).matmul(q)));
        }
    }
}

fn forward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    mask: Option<BoolTensor<Flex>>,
    scale: f64,
) -> FlexTensor {
    let options = AttentionModuleOptions {
        scale: Some(scale),
        ..Default::default()
    };
    Flex::attention(q.clone(), k.clone(), v.clone(), mask, None, options)
}

/// Attention recorded in the autodiff graph with [`AttentionBackward`].
pub fn attention_autodiff(
    q: AdTensor,
    k: AdTensor,
    v: AdTensor,
    mask: Option<BoolTensor<Flex>>,
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
                mask.clone(),
                scale,
            );
            prep.finish((q.primitive, k.primitive, v.primitive, mask, scale), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(
            &q.primitive,
            &k.primitive,
            &v.primitive,
            mask,
            scale,
        )),
    }
}
