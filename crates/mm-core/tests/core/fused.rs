//! The fused kernels of `mm_core::nn::fused` against the same function as plain Burn ops on
//! the ndarray backend, forward and backward (through `Autodiff<Flex>`'s hand-written
//! backward and ndarray's autodiff of the plain ops): the element-wise kernels and the linear
//! layer here, attention in `fused_attention.rs`, the norms in `fused_norm.rs`; the helpers
//! they share are here.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorCreationOptions, TensorData};
use mm_core::nn::fused::{add, linear, quick_gelu, quick_gelu_plain, silu, swap_middle};
use mm_data::rng::SplitMix64;

/// Inputs over the range activations meet, with the extremes where `exp` saturates, in a
/// `[rows, cols]` matrix.
pub(crate) fn inputs(rows: usize, cols: usize) -> TensorData {
    let mut rng = SplitMix64::new(7);
    let mut v: Vec<f32> = (0..rows * cols)
        .map(|_| (rng.uniform() as f32 - 0.5) * 24.0)
        .collect();
    v[0] = -200.0;
    v[1] = 200.0;
    v[2] = 0.0;
    TensorData::new(v, [rows, cols])
}

/// Each of `got` within `rel` of the largest magnitude of its `expected` twin.
pub(crate) fn assert_all_close<const N: usize>(
    what: &str,
    names: [&str; N],
    got: [TensorData; N],
    expected: [TensorData; N],
    rel: f32,
) {
    for (name, (g, e)) in names.iter().zip(got.into_iter().zip(expected)) {
        assert_eq!(g.shape, e.shape, "{what}, {name}");
        let scale = e
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(g, e);
        assert!(
            diff <= rel * scale,
            "{what}, {name}: max |diff| {diff} (scale {scale})"
        );
    }
}

pub(crate) fn max_abs_diff(a: TensorData, b: TensorData) -> f32 {
    let a = a.to_vec::<f32>().unwrap();
    let b = b.to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A tensor of `data`: in f64 on the reference side (`fused` false), f32 on ours.
///
/// Burn's plain ops in f32 on ndarray round differently on AVX2 and AVX-512 CPUs (its kernels
/// pick their SIMD width at run time), by up to 1e-4 of the scale in the attention gradient,
/// so an f32 reference measures the reference's rounding as much as ours. The dtype is given
/// at creation and Burn's ops keep it; the device's default float type (fixed by its first
/// use, shared by every test in this binary) stays f32.
pub(crate) fn tensor<B: Backend, const D: usize>(data: TensorData, fused: bool) -> Tensor<B, D> {
    let options = TensorCreationOptions::<B>::new(Default::default());
    if fused {
        Tensor::from_data(data, options)
    } else {
        let reference = Tensor::from_data(data.convert::<f64>(), options.with_dtype(DType::F64));
        assert_eq!(reference.dtype(), DType::F64, "the reference runs in f64");
        reference
    }
}

/// Forward of a `[rows, cols]` input, transposed first when `transpose` (a strided view).
fn forward<B: Backend>(data: TensorData, transpose: bool, fused: bool) -> TensorData {
    let x = Tensor::<B, 2>::from_data(data, &Default::default());
    let x = if transpose { x.transpose() } else { x };
    if fused {
        quick_gelu(x)
    } else {
        quick_gelu_plain(x)
    }
    .into_data()
}

#[test]
fn quick_gelu_forward_matches_plain_ops_on_ndarray() {
    // 300 x 257 spans several rayon chunks and a ragged last one.
    for transpose in [false, true] {
        let expected = forward::<NdArray>(inputs(300, 257), transpose, false);
        let got = forward::<Flex>(inputs(300, 257), transpose, true);
        let diff = max_abs_diff(got, expected);
        assert!(diff < 1e-5, "transpose {transpose}: max |diff| {diff}");
    }
}

/// Gradient of `sum(quick_gelu(x) * w)` with respect to `x`, and the output.
fn backward<B: burn::tensor::backend::AutodiffBackend>(fused: bool) -> (TensorData, TensorData) {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data(inputs(64, 300), &device).require_grad();
    let w = Tensor::<B, 2>::from_data(inputs(64, 300), &device) * 0.1;
    // A second use of x after the activation checks that gradients add up.
    let y = if fused {
        quick_gelu(x.clone())
    } else {
        quick_gelu_plain(x.clone())
    };
    let loss = (y.clone() * w).sum() + x.clone().powf_scalar(2.0).sum() * 0.5;
    let grads = loss.backward();
    (x.grad(&grads).unwrap().into_data(), y.into_data())
}

#[test]
fn quick_gelu_backward_matches_ndarray_autodiff() {
    let (expected_grad, expected_y) = backward::<Autodiff<NdArray>>(false);
    let (grad, y) = backward::<Autodiff<Flex>>(true);
    let dy = max_abs_diff(y, expected_y);
    let dg = max_abs_diff(grad, expected_grad);
    assert!(dy < 1e-5, "forward max |diff| {dy}");
    assert!(dg < 1e-5, "gradient max |diff| {dg}");
}

/// `[2, 5, 3, 7]` values, swapped by the fused op on Flex or by `swap_dims` on ndarray, then
/// multiplied by weights and summed: the output and the input's gradient.
fn swapped<B: burn::tensor::backend::AutodiffBackend>(fused: bool) -> (TensorData, TensorData) {
    let device = Default::default();
    let data = inputs(30, 7);
    let x = Tensor::<B, 2>::from_data(data, &device)
        .reshape([2, 5, 3, 7])
        .require_grad();
    let y = if fused {
        swap_middle(x.clone())
    } else {
        x.clone().swap_dims(1, 2)
    };
    let w = Tensor::<B, 2>::from_data(inputs(30, 7), &device).reshape([2, 3, 5, 7]);
    let loss = (y.clone() * w).sum();
    let grads = loss.backward();
    (y.into_data(), x.grad(&grads).unwrap().into_data())
}

#[test]
fn swap_middle_matches_swap_dims_forward_and_backward() {
    let (expected_y, expected_grad) = swapped::<Autodiff<NdArray>>(false);
    let (y, grad) = swapped::<Autodiff<Flex>>(true);
    assert_eq!(y.shape, expected_y.shape);
    assert_eq!(max_abs_diff(y, expected_y), 0.0);
    assert_eq!(max_abs_diff(grad, expected_grad), 0.0);
    // Inference backend, on a strided input (a transposed view).
    let x = Tensor::<Flex, 2>::from_data(inputs(7, 30), &Default::default())
        .transpose()
        .reshape([2, 5, 3, 7]);
    let plain = Tensor::<NdArray, 2>::from_data(inputs(7, 30), &Default::default())
        .transpose()
        .reshape([2, 5, 3, 7])
        .swap_dims(1, 2);
    assert_eq!(
        max_abs_diff(swap_middle(x).into_data(), plain.into_data()),
        0.0
    );
}

/// Output and gradients of `x` and `y` in `sum((x + y) * w)` for `x` of `[40, 30, 37]` (three
/// of the fused pass's tasks) and `y` of `y_dims`.
fn added<B: burn::tensor::backend::AutodiffBackend>(
    fused: bool,
    y_dims: [usize; 3],
) -> [TensorData; 3] {
    let device = Default::default();
    let dims = [40, 30, 37];
    let x = Tensor::<B, 2>::from_data(inputs(1200, 37), &device)
        .reshape(dims)
        .require_grad();
    let n: usize = y_dims.iter().product();
    let y = Tensor::<B, 2>::from_data(inputs(n / 37, 37), &device)
        .reshape(y_dims)
        .require_grad();
    let z = if fused {
        add(x.clone(), y.clone())
    } else {
        x.clone() + y.clone()
    };
    let w = Tensor::<B, 2>::from_data(inputs(37, 1200), &device).reshape(dims);
    let grads = (z.clone() * w).sum().backward();
    [
        z.into_data(),
        x.grad(&grads).unwrap().into_data(),
        y.grad(&grads).unwrap().into_data(),
    ]
}

#[test]
fn add_matches_burns_broadcast_add_forward_and_backward() {
    for y_dims in [[40, 30, 37], [1, 30, 37], [1, 1, 37]] {
        let [ez, ex, ey] = added::<Autodiff<NdArray>>(false, y_dims);
        let [z, gx, gy] = added::<Autodiff<Flex>>(true, y_dims);
        assert_eq!(z.shape, ez.shape);
        assert_eq!(gy.shape, ey.shape, "{y_dims:?}");
        assert_eq!(max_abs_diff(z, ez), 0.0, "{y_dims:?}");
        assert_eq!(max_abs_diff(gx, ex), 0.0, "{y_dims:?}");
        // `y`'s gradient sums up to 1,200 terms of up to 12 in another order.
        let d = max_abs_diff(gy, ey);
        assert!(d <= 2e-3, "{y_dims:?}: y's gradient differs by {d}");
    }
    // A shape that does not repeat over leading axes takes Burn's broadcast add.
    let device = Default::default();
    let x = Tensor::<Flex, 2>::from_data(inputs(4, 6), &device).reshape([4, 2, 3]);
    let y = Tensor::<Flex, 2>::from_data(inputs(4, 3), &device).reshape([4, 1, 3]);
    let expected = (x.clone() + y.clone()).into_data();
    assert_eq!(max_abs_diff(add(x, y).into_data(), expected), 0.0);
}

/// Output and gradients (input, weight, bias) of `sum(linear(x) * w)` for a `[3, 5, 7] -> 4`
/// layer with the same weights on both backends.
fn linear_grads<B: burn::tensor::backend::AutodiffBackend>(fused: bool) -> [TensorData; 4] {
    let device = Default::default();
    let mut layer: Linear<B> = LinearConfig::new(7, 4).init(&device);
    layer.weight = layer
        .weight
        .map(|_| Tensor::<B, 2>::from_data(inputs(7, 4), &device).require_grad());
    layer.bias = layer.bias.map(|b| {
        b.map(|_| {
            Tensor::<B, 2>::from_data(inputs(1, 4), &device)
                .reshape([4])
                .require_grad()
        })
    });
    let x = Tensor::<B, 2>::from_data(inputs(15, 7), &device)
        .reshape([3, 5, 7])
        .require_grad();
    let w = Tensor::<B, 2>::from_data(inputs(15, 4), &device).reshape([3, 5, 4]);
    let y = if fused {
        linear(&layer, x.clone())
    } else {
        layer.forward(x.clone())
    };
    let grads = (y.clone() * w).sum().backward();
    let layer = layer.clone();
    [
        y.into_data(),
        x.grad(&grads).unwrap().into_data(),
        layer.weight.val().grad(&grads).unwrap().into_data(),
        layer.bias.unwrap().val().grad(&grads).unwrap().into_data(),
    ]
}

#[test]
fn linear_gradients_match_burns_linear_on_ndarray() {
    let expected = linear_grads::<Autodiff<NdArray>>(false);
    let got = linear_grads::<Autodiff<Flex>>(true);
    // Inputs of up to 12 give sums of a few hundred: f32 rounding, relative to the scale.
    let names = ["output", "input grad", "weight grad", "bias grad"];
    assert_all_close("linear", names, got, expected, 1e-6);
}

/// `linear` on Flex at inference against Burn's `Linear` on ndarray: a small layer on a
/// transposed (strided) input, and one large enough for the GEMM to split over threads.
#[test]
fn linear_on_flex_inference_matches_ndarray() {
    for (rows, input, output, transposed) in [(6, 5, 3, true), (320, 160, 170, false)] {
        let (dev, nd_dev) = (Default::default(), Default::default());
        let weight = inputs(input, output);
        let bias = TensorData::new(inputs(1, output).to_vec::<f32>().unwrap(), [output]);
        let x = inputs(rows, input);
        let layer = |w: TensorData, b: TensorData| {
            (
                Linear::<Flex> {
                    weight: Param::from_data(w.clone(), &dev),
                    bias: Some(Param::from_data(b.clone(), &dev)),
                },
                Linear::<NdArray> {
                    weight: Param::from_data(w, &nd_dev),
                    bias: Some(Param::from_data(b, &nd_dev)),
                },
            )
        };
        let (fused_layer, plain_layer) = layer(weight, bias);
        let (flex, nd) = if transposed {
            // The same [rows, input] matrix, stored as [input, rows] and viewed transposed.
            let stored = Tensor::<NdArray, 2>::from_data(x, &nd_dev)
                .transpose()
                .into_data();
            (
                Tensor::<Flex, 2>::from_data(stored.clone(), &dev).transpose(),
                Tensor::<NdArray, 2>::from_data(stored, &nd_dev).transpose(),
            )
        } else {
            (
                Tensor::<Flex, 2>::from_data(x.clone(), &dev),
                Tensor::<NdArray, 2>::from_data(x, &nd_dev),
            )
        };
        let got = linear(&fused_layer, flex.unsqueeze::<3>()).into_data();
        let expected = plain_layer.forward(nd.unsqueeze::<3>()).into_data();
        assert_eq!(got.shape, expected.shape);
        let scale = expected.iter::<f32>().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(got, expected);
        assert!(
            diff <= 1e-5 * scale,
            "{rows}x{input}->{output}: max |diff| {diff}"
        );
    }
}

/// Output and input gradient of `sum(silu(x) * w) + |x|^2 / 2`, fused or plain.
fn silu_grads<B: burn::tensor::backend::AutodiffBackend>(fused: bool) -> [TensorData; 2] {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data(inputs(40, 333), &device).require_grad();
    let w = Tensor::<B, 2>::from_data(inputs(40, 333), &device) * 0.1;
    let y = if fused {
        silu(x.clone())
    } else {
        activation::silu(x.clone())
    };
    let loss = (y.clone() * w).sum() + x.clone().powf_scalar(2.0).sum() * 0.5;
    let grads = loss.backward();
    [y.into_data(), x.grad(&grads).unwrap().into_data()]
}

#[test]
fn silu_matches_burns_silu_forward_and_backward() {
    let expected = silu_grads::<Autodiff<NdArray>>(false);
    let got = silu_grads::<Autodiff<Flex>>(true);
    assert_all_close("silu", ["output", "x grad"], got, expected, 1e-6);
    // Inference on Flex (no autodiff) takes the same kernel.
    let x = Tensor::<Flex, 2>::from_data(inputs(40, 333), &Default::default());
    let plain = Tensor::<NdArray, 2>::from_data(inputs(40, 333), &Default::default());
    let diff = max_abs_diff(silu(x).into_data(), activation::silu(plain).into_data());
    assert!(diff < 1e-5, "inference max |diff| {diff}");
}
