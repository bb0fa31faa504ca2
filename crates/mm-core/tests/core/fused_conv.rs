//! `mm_core::nn::fused::{conv2d, conv3d}` against Burn's `Conv2d` and `Conv3d` on ndarray in
//! f64, forward and backward, over kernels, strides, dilations and paddings (asymmetric and
//! "same" included), with and without bias, one sample and several.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::Param;
use burn::nn::conv::{Conv2dConfig, Conv3dConfig};
use burn::nn::{PaddingConfig2d, PaddingConfig3d};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use mm_core::nn::fused::{conv2d, conv3d};

use super::fused::{assert_all_close, tensor};

/// Smooth values of both signs, different for each `seed`.
fn data(dims: &[usize], seed: f32) -> TensorData {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| (i as f32 * 0.61 + seed).sin() * 2.0 + ((i % 5) as f32 - 2.0) * 0.1)
        .collect();
    TensorData::new(v, dims.to_vec())
}

/// Output, then the gradients of the input, weight and bias (when there is one) of
/// `sum(conv(x) * r)`, each as f32 data.
fn results<B: AutodiffBackend, const D: usize>(
    y: Tensor<B, D>,
    x: Tensor<B, D>,
    weight: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
    fused: bool,
) -> Vec<TensorData> {
    let r = tensor::<B, D>(data(&y.dims(), 3.0), fused);
    let grads = (y.clone() * r).sum().backward();
    let mut out = vec![
        y.into_data(),
        x.grad(&grads).unwrap().into_data(),
        weight.grad(&grads).unwrap().into_data(),
    ];
    out.extend(bias.map(|b| b.grad(&grads).unwrap().into_data()));
    out.into_iter().map(|d| d.convert::<f32>()).collect()
}

/// A 2D case: `[batch, channels, h, w]` in, `out` channels, then the layer's settings.
struct Case2d {
    input: [usize; 4],
    out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: PaddingConfig2d,
    bias: bool,
}

fn conv2d_results<B: AutodiffBackend>(c: &Case2d, fused: bool) -> Vec<TensorData> {
    let device = Default::default();
    let [_, channels, _, _] = c.input;
    let mut layer = Conv2dConfig::new([channels, c.out], c.kernel)
        .with_stride(c.stride)
        .with_dilation(c.dilation)
        .with_padding(c.padding.clone())
        .with_bias(c.bias)
        .init::<B>(&device);
    let [kh, kw] = c.kernel;
    layer.weight = Param::from_tensor(tensor(data(&[c.out, channels, kh, kw], 1.0), fused));
    layer.bias = c
        .bias
        .then(|| Param::from_tensor(tensor(data(&[c.out], 2.0), fused)));
    let x = tensor::<B, 4>(data(&c.input, 0.0), fused).require_grad();
    let y = match (fused, &c.padding) {
        (true, _) => conv2d(&layer, x.clone()),
        // Burn pads uneven padding through a zero tensor of the default dtype (f32), which
        // refuses the f64 reference input, so the reference pads in f64 itself.
        (false, &PaddingConfig2d::Explicit(top, left, bottom, right)) => {
            let [n, ch, h, w] = c.input;
            let padded = [n, ch, h + top + bottom, w + left + right];
            let zeros = tensor::<B, 4>(TensorData::zeros::<f32, _>(padded), false);
            let x = zeros.slice_assign([0..n, 0..ch, top..top + h, left..left + w], x.clone());
            layer.padding = PaddingConfig2d::Valid;
            layer.forward(x)
        }
        (false, _) => layer.forward(x.clone()),
    };
    let bias = layer.bias.as_ref().map(|b| b.val());
    results(y, x, layer.weight.val(), bias, fused)
}

fn check(what: &str, got: Vec<TensorData>, expected: Vec<TensorData>) {
    let names = ["output", "input grad", "weight grad", "bias grad"];
    assert_eq!(got.len(), expected.len(), "{what}");
    for ((g, e), name) in got.into_iter().zip(expected).zip(names) {
        // Sums of up to a few hundred products of values near 2: f32 rounding.
        assert_all_close(what, [name], [g], [e], 2e-6);
    }
}

/// The fused conv2d on Flex against Burn's on ndarray, forward and backward.
fn check_conv2d(what: &str, case: &Case2d) {
    let expected = conv2d_results::<Autodiff<NdArray>>(case, false);
    let got = conv2d_results::<Autodiff<Flex>>(case, true);
    check(what, got, expected);
}

#[test]
fn conv2d_matches_burns_conv2d_forward_and_backward() {
    let cases = [
        // Several samples (one rayon task each), strides, dilation, uneven explicit padding.
        Case2d {
            input: [5, 3, 11, 9],
            out: 4,
            kernel: [3, 2],
            stride: [2, 1],
            dilation: [1, 2],
            padding: PaddingConfig2d::Explicit(1, 0, 2, 1),
            bias: true,
        },
        // One sample (the GEMM and im2col split over the pool), "same" at stride 2.
        Case2d {
            input: [1, 6, 14, 15],
            out: 7,
            kernel: [4, 3],
            stride: [2, 2],
            dilation: [1, 1],
            padding: PaddingConfig2d::Same,
            bias: true,
        },
        // Pointwise (the input is its own columns), no bias.
        Case2d {
            input: [3, 8, 5, 6],
            out: 5,
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            padding: PaddingConfig2d::Valid,
            bias: false,
        },
        // ViT's patch embedding: kernel = stride, no padding.
        Case2d {
            input: [2, 3, 16, 16],
            out: 6,
            kernel: [4, 4],
            stride: [4, 4],
            dilation: [1, 1],
            padding: PaddingConfig2d::Valid,
            bias: false,
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        check_conv2d(&format!("conv2d case {i}"), case);
    }
    // Several im2col tiles (of about 2^20 elements: 28 of the 64 output rows each), one sample
    // (tiles in parallel) and three (a sample per task).
    for batch in [1, 3] {
        let case = Case2d {
            input: [batch, 32, 64, 128],
            out: 8,
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            bias: true,
        };
        check_conv2d(&format!("conv2d, tiled, batch {batch}"), &case);
    }
}

#[test]
fn conv2d_on_flex_inference_matches_ndarray() {
    let (dev, nd) = (Default::default(), Default::default());
    let config =
        Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
    let mut fused_layer = config.init::<Flex>(&dev);
    let mut plain_layer = config.init::<NdArray>(&nd);
    fused_layer.weight = Param::from_data(data(&[6, 4, 3, 3], 1.0), &dev);
    plain_layer.weight = Param::from_data(data(&[6, 4, 3, 3], 1.0), &nd);
    fused_layer.bias = Some(Param::from_data(data(&[6], 2.0), &dev));
    plain_layer.bias = Some(Param::from_data(data(&[6], 2.0), &nd));
    let got = conv2d(
        &fused_layer,
        Tensor::from_data(data(&[3, 4, 10, 7], 0.0), &dev),
    );
    let expected = plain_layer.forward(Tensor::from_data(data(&[3, 4, 10, 7], 0.0), &nd));
    assert_all_close(
        "inference",
        ["output"],
        [got.into_data()],
        [expected.into_data()],
        2e-6,
    );
}

/// A 3D case, as [`Case2d`] (symmetric padding).
struct Case3d {
    input: [usize; 5],
    out: usize,
    kernel: [usize; 3],
    stride: [usize; 3],
    dilation: [usize; 3],
    padding: PaddingConfig3d,
}

fn conv3d_results<B: AutodiffBackend>(c: &Case3d, fused: bool) -> Vec<TensorData> {
    let device = Default::default();
    let [_, channels, _, _, _] = c.input;
    let mut layer = Conv3dConfig::new([channels, c.out], c.kernel)
        .with_stride(c.stride)
        .with_dilation(c.dilation)
        .with_padding(c.padding.clone())
        .init::<B>(&device);
    let [kd, kh, kw] = c.kernel;
    layer.weight = Param::from_tensor(tensor(data(&[c.out, channels, kd, kh, kw], 1.0), fused));
    layer.bias = Some(Param::from_tensor(tensor(data(&[c.out], 2.0), fused)));
    let x = tensor::<B, 5>(data(&c.input, 0.0), fused).require_grad();
    let y = if fused {
        conv3d(&layer, x.clone())
    } else {
        layer.forward(x.clone())
    };
    let bias = layer.bias.as_ref().map(|b| b.val());
    results(y, x, layer.weight.val(), bias, fused)
}

#[test]
fn conv3d_matches_burns_conv3d_forward_and_backward() {
    let cases = [
        // R3D's residual convolutions: 3x3x3, padding 1, stride 2 in space only.
        Case3d {
            input: [3, 3, 6, 9, 8],
            out: 5,
            kernel: [3, 3, 3],
            stride: [1, 2, 2],
            dilation: [1, 1, 1],
            padding: PaddingConfig3d::Explicit(1, 1, 1),
        },
        // One sample, uneven kernel, depth stride and dilation.
        Case3d {
            input: [1, 4, 9, 7, 7],
            out: 3,
            kernel: [2, 3, 1],
            stride: [2, 1, 1],
            dilation: [2, 1, 1],
            padding: PaddingConfig3d::Explicit(0, 1, 0),
        },
        // "Same" padding with an odd kernel.
        Case3d {
            input: [2, 2, 4, 5, 5],
            out: 4,
            kernel: [3, 3, 3],
            stride: [1, 1, 1],
            dilation: [1, 1, 1],
            padding: PaddingConfig3d::Same,
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let expected = conv3d_results::<Autodiff<NdArray>>(case, false);
        let got = conv3d_results::<Autodiff<Flex>>(case, true);
        check(&format!("conv3d case {i}"), got, expected);
    }
}
