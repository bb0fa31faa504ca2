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

/// `x` itself when its `f32` elements are one contiguous run, a contiguous copy otherwise.
pub(super) fn dense(x: &FlexTensor) -> FlexTensor {
    if x.as_slice::<f32>().is_some() {
        x.clone()
    } else {
        x.to_contiguous()
    }
}

/// The elements of a [`dense`] `f32` tensor.
pub(super) fn elements(x: &FlexTensor) -> &[f32] {
    x.as_slice::<f32>().expect("a dense f32 tensor")
}

/// A Flex tensor owning `values` (no copy), laid out contiguously in `shape`.
pub(super) fn tensor(values: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A contiguous `f32` copy of a Flex tensor's elements (a norm's gamma or beta).
pub(super) fn values(x: &FlexTensor) -> Vec<f32> {
    elements(&dense(x)).to_vec()
}

/// Registers gradients (elements and shape) with the parent nodes that want them: the
/// input, gamma and beta of the fused norms.
pub(super) fn register_grads<const N: usize>(
    grads: &mut Gradients,
    nodes: [Option<burn::backend::autodiff::NodeId>; N],
    values: [(Vec<f32>, burn::tensor::Shape); N],
) {
    for (node, (v, shape)) in nodes.into_iter().zip(values) {
        if let Some(id) = node {
            grads.register::<Flex>(id, tensor(v, shape));
        }
    }
}

/// A new contiguous Flex tensor of `x`'s shape, written by `fill` from `x`'s elements (which
/// returns how many it wrote: all of them, or [`kernels::written`] panics).
fn map(
    x: &FlexTensor,
    fill: impl FnOnce(&[f32], &mut [std::mem::MaybeUninit<f32>]) -> usize,
) -> FlexTensor {
    let x = dense(x);
    let src = x.as_slice::<f32>().expect("contiguous f32");
    let out = kernels::written(src.len(), |out| fill(src, out));
    tensor(out, x.shape())
}

/// The fused `x * sigmoid(alpha x)` on a Flex primitive.
fn gated_flex(alpha: f32, x: &FlexTensor) -> FlexTensor {
    map(x, |x, out| kernels::gated_unit(alpha, x, out))
}

/// The backward of `x * sigmoid(alpha x)`: the gradient of its input from its output's.
#[derive(Debug)]
struct GatedBackward {
    alpha: f32,
}

impl Backward<Flex, 1> for GatedBackward {
    /// The forward's input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        let alpha = self.alpha;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let x = dense(&x);
            let grad = dense(&grad);
            let xs = x.as_slice::<f32>().expect("contiguous f32");
            let gs = grad.as_slice::<f32>().expect("contiguous f32");
            let out = kernels::written(xs.len(), |out| {
                kernels::gated_unit_backward(alpha, xs, gs, out)
            });
            tensor(out, x.shape())
        });
    }
}

/// `x` (`[a, b, c, d]`) with its middle axes swapped, contiguous.
fn swap_middle_flex(x: &FlexTensor) -> FlexTensor {
    let x = dense(x);
    let dims: [usize; 4] = x.shape().dims();
    let src = x.as_slice::<f32>().expect("contiguous f32");
    let out = kernels::written(src.len(), |out| kernels::swap_middle(src, dims, out));
    tensor(out, [dims[0], dims[2], dims[1], dims[3]])
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
    flex: impl FnOnce(&FlexTensor) -> FlexTensor,
    autodiff: impl FnOnce(AdTensor) -> AdTensor,
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

/// The fused forward recorded in the autodiff graph with [`GatedBackward`].
fn gated_autodiff(alpha: f32, x: AdTensor) -> AdTensor {
    match (GatedBackward { alpha })
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = gated_flex(alpha, &x.primitive);
            prep.finish(x.primitive, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(gated_flex(alpha, &x.primitive)),
    }
}

/// [`super::quick_gelu`] (`alpha` 1.702) and [`super::silu`] (`alpha` 1) when `B` is `Flex`
/// or `Autodiff<Flex>` and `x` is `f32`; `Err(x)` otherwise.
pub fn gated<B: Backend, const D: usize>(
    alpha: f32,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    on_flex(x, |x| gated_flex(alpha, x), |x| gated_autodiff(alpha, x))
}

/// [`super::linear`] when `B` is `Flex` or `Autodiff<Flex>`, `x` is `f32` and the layer has a
/// bias; `Err(x)` otherwise.
pub fn linear<B: Backend, const D: usize>(
    layer: &burn::nn::Linear<B>,
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let Some(bias) = &layer.bias else {
        return Err(x);
    };
    let is_flex = TypeId::of::<B>() == TypeId::of::<Flex>();
    let is_ad_flex = TypeId::of::<B>() == TypeId::of::<AdFlex>();
    let input = layer.weight.dims()[0];
    if !(is_flex || is_ad_flex) || x.dtype() != DType::F32 || x.dims()[D - 1] != input {
        return Err(x);
    }
    let (x, w, b) = (
        x.into_primitive().tensor(),
        layer.weight.val().into_primitive().tensor(),
        bias.val().into_primitive().tensor(),
    );
    let y: FloatTensor<B> = if is_flex {
        let raw = |t: FloatTensor<B>| -> FlexTensor { cast(t).expect("B is Flex") };
        cast(super::linear::forward(&raw(x), &raw(w), &raw(b))).expect("B is Flex")
    } else {
        let ad = |t: FloatTensor<B>| -> AdTensor { cast(t).expect("B is Autodiff<Flex>") };
        cast(super::linear::linear_autodiff(ad(x), ad(w), ad(b))).expect("B is Autodiff<Flex>")
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
}

/// [`super::attention`] when `B` is `Flex` or `Autodiff<Flex>`, the inputs are `f32`, the
/// scale positive and the mask broadcasts to the scores (and, at inference, the scores fit
/// [`super::attention::MAX_SCORES`]); `Err` with the inputs back otherwise.
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
    let is_flex = TypeId::of::<B>() == TypeId::of::<Flex>();
    let is_ad_flex = TypeId::of::<B>() == TypeId::of::<AdFlex>();
    if !(is_flex || is_ad_flex) || q.dtype() != DType::F32 || scale <= 0.0 {
        return Err((q, k, v, mask));
    }
    let ([b, h, tq, d], [kb, kh, tk, kd], [vb, vh, vt, _]) = (q.dims(), k.dims(), v.dims());
    if [kb, kh, kd] != [b, h, d] || [vb, vh, vt] != [b, h, tk] {
        return Err((q, k, v, mask));
    }
    let target = [b, h, tq, tk];
    if is_flex && target.iter().product::<usize>() > super::attention::MAX_SCORES {
        return Err((q, k, v, mask));
    }
    let flex_mask = match &mask {
        Some(m) => {
            let m: burn::tensor::ops::BoolTensor<Flex> = cast(m.clone().into_primitive())
                .expect("Flex and Autodiff<Flex> share Flex's bool tensors");
            match super::attention::flex_mask(&m, target) {
                Some(m) => Some(m),
                None => return Err((q, k, v, mask)),
            }
        }
        None => None,
    };
    let out: FloatTensor<B> = if is_flex {
        let raw = |t: Tensor<B, 4>| -> FlexTensor {
            cast(t.into_primitive().tensor()).expect("B is Flex")
        };
        let y = super::attention::forward(&raw(q), &raw(k), &raw(v), flex_mask.as_ref(), scale);
        cast(y).expect("B is Flex")
    } else {
        let ad = |t: Tensor<B, 4>| -> AdTensor {
            cast(t.into_primitive().tensor()).expect("B is Autodiff<Flex>")
        };
        let y = super::attention::attention_autodiff(ad(q), ad(k), ad(v), flex_mask, scale);
        cast(y).expect("B is Autodiff<Flex>")
    };
    Ok(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// [`super::group_norm`] (SiLU after it when `silu`) when `B` is `Flex` or `Autodiff<Flex>`,
/// `x` is `f32` with the norm's channel count on axis 1 and the norm is affine; `Err(x)`
/// otherwise.
pub fn group_norm<B: Backend, const D: usize>(
    norm: &burn::nn::GroupNorm<B>,
    x: Tensor<B, D>,
    silu: bool,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
        return Err(x);
    };
    let dims = x.dims();
    if D < 2 || dims[1] != norm.num_channels || !dims[1].is_multiple_of(norm.num_groups) {
        return Err(x);
    }
    let groups = super::group_norm::Groups {
        batch: dims[0],
        channels: dims[1],
        spatial: dims[2..].iter().product(),
        groups: norm.num_groups,
        epsilon: norm.epsilon as f32,
        silu,
    };
    let (gamma, beta) = (gamma.val(), beta.val());
    let (gamma_ad, beta_ad) = (gamma.clone(), beta.clone());
    on_flex(
        x,
        |x| {
            let raw = |t: Tensor<B, 1>| -> FlexTensor {
                cast(t.into_primitive().tensor()).expect("B is Flex")
            };
            super::group_norm::forward_flex(x, &raw(gamma), &raw(beta), groups).0
        },
        |x| {
            let ad = |t: Tensor<B, 1>| -> AdTensor {
                cast(t.into_primitive().tensor()).expect("B is Autodiff<Flex>")
            };
            super::group_norm::group_norm_autodiff(x, ad(gamma_ad), ad(beta_ad), groups)
        },
    )
}

/// [`super::layer_norm`] when `B` is `Autodiff<Flex>`, `x` is `f32` and the norm has a bias;
/// `Err(x)` otherwise (Flex's own layer-norm forward is already one fused pass).
pub fn layer_norm<B: Backend, const D: usize>(
    norm: &burn::nn::LayerNorm<B>,
    x: Tensor<B, D>,
    epsilon: f64,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let Some(beta) = &norm.beta else {
        return Err(x);
    };
    if TypeId::of::<B>() != TypeId::of::<AdFlex>() || x.dtype() != DType::F32 {
        return Err(x);
    }
    let ad = |t: FloatTensor<B>| -> AdTensor { cast(t).expect("B is Autodiff<Flex>") };
    let x = ad(x.into_primitive().tensor());
    let gamma = ad(norm.gamma.val().into_primitive().tensor());
    let beta = ad(beta.val().into_primitive().tensor());
    let y = super::layer_norm::layer_norm_autodiff(x, gamma, beta, epsilon as f32);
    let y: FloatTensor<B> = cast(y).expect("B is Autodiff<Flex>");
    Ok(Tensor::from_primitive(TensorPrimitive::Float(y)))
}
