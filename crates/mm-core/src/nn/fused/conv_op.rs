//! Burn's `Conv2d` and `Conv3d` layers through [`super::conv_gemm`]: on Flex its forward,
//! on `Autodiff<Flex>` one graph node whose backward is [`super::conv_gemm::backward`].

use std::any::TypeId;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::PaddingConfig3d;
use burn::nn::conv::{Conv2d, Conv3d};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};

use super::conv::Geometry;
use super::conv_gemm;
use super::flex::{AdFlex, AdTensor, cast, dense, elements, tensor};

/// Padding `(before, after)` that keeps `size_in.div_ceil(stride)` outputs (Burn's "same").
fn same(kernel: usize, stride: usize, size_in: usize) -> (usize, usize) {
    let needed = (size_in.div_ceil(stride).max(1) - 1) * stride + kernel;
    let total = needed.saturating_sub(size_in);
    (total / 2, total - total / 2)
}

/// `layer.forward(x)` when `B` is Flex or `Autodiff<Flex>`, the tensors are `f32` and the
/// layer has one group; `Err(x)` otherwise.
pub fn conv2d<B: Backend>(
    layer: &Conv2d<B>,
    x: Tensor<B, 4>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let [n, c, h, w] = x.dims();
    let [o, ci, kh, kw] = layer.weight.dims();
    let [sh, sw] = layer.stride;
    let ((top, bottom), (left, right)) = match layer.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Same => (same(kh, sh, h), same(kw, sw, w)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
    };
    let [dh, dw] = layer.dilation;
    let geometry = Geometry::new(
        n,
        c,
        o,
        [1, h, w],
        [1, kh, kw],
        [1, sh, sw],
        [1, dh, dw],
        [0, top, left],
        [0, bottom, right],
    );
    let Some(g) = geometry.filter(|_| layer.groups == 1 && ci == c) else {
        return Err(x);
    };
    let out = [n, o, g.output[1], g.output[2]];
    let bias = layer.bias.as_ref().map(|b| b.val());
    run(g, x, layer.weight.val(), bias, out)
}

/// `layer.forward(x)` as [`conv2d`] does, for 3D convolutions with symmetric padding.
pub fn conv3d<B: Backend>(
    layer: &Conv3d<B>,
    x: Tensor<B, 5>,
) -> Result<Tensor<B, 5>, Tensor<B, 5>> {
    let [n, c, d, h, w] = x.dims();
    let [o, ci, kd, kh, kw] = layer.weight.dims();
    let pad = match layer.padding {
        PaddingConfig3d::Valid => [0; 3],
        PaddingConfig3d::Explicit(pd, ph, pw) => [pd, ph, pw],
        PaddingConfig3d::Same => {
            let pairs = [
                same(kd, layer.stride[0], d),
                same(kh, layer.stride[1], h),
                same(kw, layer.stride[2], w),
            ];
            // Burn refuses uneven "same" padding in 3D; its own forward says so.
            if pairs.iter().any(|(b, a)| b != a) {
                return Err(x);
            }
            pairs.map(|(b, _)| b)
        }
    };
    let geometry = Geometry::new(
        n,
        c,
        o,
        [d, h, w],
        [kd, kh, kw],
        layer.stride,
        layer.dilation,
        pad,
        pad,
    );
    let Some(g) = geometry.filter(|_| layer.groups == 1 && ci == c) else {
        return Err(x);
    };
    let out = [n, o, g.output[0], g.output[1], g.output[2]];
    let bias = layer.bias.as_ref().map(|b| b.val());
    run(g, x, layer.weight.val(), bias, out)
}

/// The convolution of `x` by `w` (plus `b`) with output shape `out`, on Flex or
/// `Autodiff<Flex>` in `f32`; `Err(x)` on anything else.
fn run<B: Backend, const D: usize>(
    g: Geometry,
    x: Tensor<B, D>,
    w: Tensor<B, D>,
    b: Option<Tensor<B, 1>>,
    out: [usize; D],
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let is_flex = TypeId::of::<B>() == TypeId::of::<Flex>();
    let is_ad_flex = TypeId::of::<B>() == TypeId::of::<AdFlex>();
    let f32s = x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && b.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    if !(is_flex || is_ad_flex) || !f32s {
        return Err(x);
    }
    let out = Shape::from(out.to_vec());
    let (x, w) = (x.into_primitive().tensor(), w.into_primitive().tensor());
    let b = b.map(|b| b.into_primitive().tensor());
    let y: FloatTensor<B> = if is_flex {
        let raw = |t: FloatTensor<B>| -> FlexTensor { cast(t).expect("B is Flex") };
        let y = forward(&g, &raw(x), &raw(w), b.map(raw).as_ref(), out);
        cast(y).expect("B is Flex")
    } else {
        let ad = |t: FloatTensor<B>| -> AdTensor { cast(t).expect("B is Autodiff<Flex>") };
        cast(conv_autodiff(g, ad(x), ad(w), b.map(ad), out)).expect("B is Autodiff<Flex>")
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
}

/// The forward on Flex primitives.
fn forward(
    g: &Geometry,
    x: &FlexTensor,
    w: &FlexTensor,
    b: Option<&FlexTensor>,
    out: Shape,
) -> FlexTensor {
    let (x, w, b) = (dense(x), dense(w), b.map(dense));
    let y = conv_gemm::forward(g, elements(&x), elements(&w), b.as_ref().map(elements));
    tensor(y, out)
}

/// Gradients of the input, the weight and (with three parents) the bias.
#[derive(Debug)]
struct ConvBackward {
    geometry: Geometry,
}

impl<const N: usize> Backward<Flex, N> for ConvBackward {
    /// The forward's input and weight.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let gy = dense(&grads.consume::<Flex>(&ops.node));
        let (x, w) = ops.state;
        let (x_shape, w_shape) = (x.shape(), w.shape());
        let parents = ops.parents;
        let wants = |i: usize| parents.get(i).is_some_and(Option::is_some);
        let (x, w) = (dense(&x), dense(&w));
        let grad = conv_gemm::backward(
            &self.geometry,
            elements(&x),
            elements(&w),
            elements(&gy),
            [wants(0), wants(1), wants(2)],
        );
        let bias_shape = Shape::from(vec![self.geometry.out_channels]);
        let found = [
            (grad.x, x_shape),
            (grad.w, w_shape),
            (grad.bias, bias_shape),
        ];
        for (parent, (values, shape)) in parents.iter().zip(found) {
            if let (Some(node), Some(values)) = (parent, values) {
                grads.register::<Flex>(node.id, tensor(values, shape));
            }
        }
    }
}

/// The convolution recorded in the autodiff graph with [`ConvBackward`].
fn conv_autodiff(
    g: Geometry,
    x: AdTensor,
    w: AdTensor,
    b: Option<AdTensor>,
    out: Shape,
) -> AdTensor {
    let op = ConvBackward { geometry: g };
    let run = |b: Option<&FlexTensor>| forward(&g, &x.primitive, &w.primitive, b, out.clone());
    match b {
        Some(b) => match op
            .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = run(Some(&b.primitive));
                prep.finish((x.primitive.clone(), w.primitive.clone()), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(Some(&b.primitive))),
        },
        None => match op
            .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = run(None);
                prep.finish((x.primitive.clone(), w.primitive.clone()), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(None)),
        },
    }
}
