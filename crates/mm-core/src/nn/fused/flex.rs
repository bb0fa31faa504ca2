//! The fused kernels on `Flex` and `Autodiff<Flex>`, reached from generic code by a run-time
//! type check (see the module above).

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};

use super::kernels;

/// The training backend whose graph the fused ops join (burn's default checkpointing).
pub(super) type AdFlex = Autodiff<Flex, NoCheckpointing>;
/// Its tensor primitive.
pub(super) type AdTensor = FloatTensor<AdFlex>;

/// Moves `value` into type `U` when `T` and `U` are the same type.
pub(super) fn cast<T: 'static, U: 'static>(value: T) -> Option<U> {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
}

/// An `f32` Flex tensor's elements, copied into a contiguous layout only when needed.
fn contiguous(x: &FlexTensor) -> FlexTensor {
    x.to_contiguous()
}

/// A new contiguous Flex tensor of `x`'s shape, filled by `fill` from `x`'s elements.
fn map(x: &FlexTensor, fill: impl FnOnce(&[f32], &mut [f32])) -> FlexTensor {
    let x = contiguous(x);
    let src = x.as_slice::<f32>().expect("contiguous f32");
    let mut out = vec![0.0f32; src.len()];
    fill(src, &mut out);
    FlexTensor::from_data(TensorData::new(out, x.shape()))
}

/// The fused forward on a Flex primitive.
fn quick_gelu_flex(x: &FlexTensor) -> FlexTensor {
    map(x, kernels::quick_gelu)
}

/// The backward of quick-GELU: the gradient of its input from its output's.
#[derive(Debug)]
struct QuickGeluBackward;

impl Backward<Flex, 1> for QuickGeluBackward {
    /// The forward's input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let x = contiguous(&x);
            let grad = contiguous(&grad);
            let xs = x.as_slice::<f32>().expect("contiguous f32");
            let gs = grad.as_slice::<f32>().expect("contiguous f32");
            let mut out = vec![0.0f32; xs.len()];
            kernels::quick_gelu_backward(xs, gs, &mut out);
            FlexTensor::from_data(TensorData::new(out, x.shape()))
        });
    }
}

/// `x` (`[a, b, c, d]`) with its middle axes swapped, contiguous.
fn swap_middle_flex(x: &FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    let dims: [usize; 4] = x.shape().dims();
    let src = x.as_slice::<f32>().expect("contiguous f32");
    let mut out = vec![0.0f32; src.len()];
    kernels::swap_middle(src, dims, &mut out);
    FlexTensor::from_data(TensorData::new(out, [dims[0], dims[2], dims[1], dims[3]]))
}

/// The backward of the axis swap: the same swap of the gradient.
#[derive(Debug)]
struct SwapMiddleBackward;

impl Backward<Flex, 1> for SwapMiddleBackward {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| swap_middle_flex(&grad));
    }
}

fn swap_middle_autodiff(x: AdTensor) -> AdTensor {
    match SwapMiddleBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((), swap_middle_flex(&x.primitive)),
        OpsKind::UnTracked(prep) => prep.finish(swap_middle_flex(&x.primitive)),
    }
}

/// [`super::swap_middle`] on Flex; `Err(x)` on any other backend or dtype.
pub fn swap_middle<B: Backend>(x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    on_flex(x, swap_middle_flex, swap_middle_autodiff)
}

/// Runs `flex` when `B` is Flex, `autodiff` when it is `Autodiff<Flex>`, for `f32` `x`.
fn on_flex<B: Backend, const D: usize, const E: usize>(
    x: Tensor<B, D>,
    flex: fn(&FlexTensor) -> FlexTensor,
    autodiff: fn(AdTensor) -> AdTensor,
) -> Result<Tensor<B, E>, Tensor<B, D>> {
    let is_flex = TypeId::of::<B>() == TypeId::of::<Flex>();
    let is_ad_flex = TypeId::of::<B>() == TypeId::of::<AdFlex>();
    if !(is_flex || is_ad_flex) || x.dtype() != DType::F32 {
        return Err(x);
    }
    let primitive = x.into_primitive().tensor();
    let out: FloatTensor<B> = if is_flex {
        let x: FlexTensor = cast(primitive).expect("B is Flex");
        cast(flex(&x)).expect("B is Flex")
    } else {
        let x: AdTensor = cast(primitive).expect("B is Autodiff<Flex>");
        cast(autodiff(x)).expect("B is Autodiff<Flex>")
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// The fused forward recorded in the autodiff graph with [`QuickGeluBackward`].
fn quick_gelu_autodiff(x: AdTensor) -> AdTensor {
    match QuickGeluBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = quick_gelu_flex(&x.primitive);
            prep.finish(x.primitive, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(quick_gelu_flex(&x.primitive)),
    }
}

/// [`super::quick_gelu`] when `B` is `Flex` or `Autodiff<Flex>` and `x` is `f32`; `Err(x)`
/// otherwise.
pub fn quick_gelu<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    on_flex(x, quick_gelu_flex, quick_gelu_autodiff)
}

/// [`super::linear`] when `B` is `Autodiff<Flex>`, `x` is `f32` and the layer has a bias;
/// `Err(x)` otherwise (inference on Flex gains nothing: its forward is already one GEMM).
pub fn linear<B: Backend, const D: usize>(
    layer: &burn::nn::Linear<B>,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let Some(bias) = &layer.bias else {
        return Err(x);
    };
    if TypeId::of::<B>() != TypeId::of::<AdFlex>() || x.dtype() != DType::F32 {
        return Err(x);
    }
    let ad = |t: FloatTensor<B>| -> AdTensor { cast(t).expect("B is Autodiff<Flex>") };
    let x = ad(x.into_primitive().tensor());
    let w = ad(layer.weight.val().into_primitive().tensor());
    let b = ad(bias.val().into_primitive().tensor());
    let y = super::linear::linear_autodiff(x, w, b);
    let y: FloatTensor<B> = cast(y).expect("B is Autodiff<Flex>");
    Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
}

/// [`super::attention`] when `B` is `Autodiff<Flex>` and the inputs are `f32`; `Err` with the
/// inputs back otherwise.
#[allow(clippy::type_complexity)]
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, burn::tensor::Bool>>,
    scale: f64,
) -> Result<
    Tensor<B, 4>,
    (
        Tensor<B, 4>,
        Tensor<B, 4>,
        Tensor<B, 4>,
        Option<Tensor<B, 4, burn::tensor::Bool>>,
    ),
> {
    if TypeId::of::<B>() != TypeId::of::<AdFlex>() || q.dtype() != DType::F32 {
        return Err((q, k, v, mask));
    }
    let ad = |t: Tensor<B, 4>| -> AdTensor {
        cast(t.into_primitive().tensor()).expect("B is Autodiff<Flex>")
    };
    let mask = mask.map(|m| {
        let m: burn::tensor::ops::BoolTensor<Flex> =
            cast(m.into_primitive()).expect("Autodiff<Flex> keeps Flex's bool tensors");
        m
    });
    let y = super::attention::attention_autodiff(ad(q), ad(k), ad(v), mask, scale);
    let y: FloatTensor<B> = cast(y).expect("B is Autodiff<Flex>");
    Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
}
