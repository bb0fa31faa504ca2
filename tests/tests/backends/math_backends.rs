//! mm-core's math on every backend compiled in: linear CCA (device covariances + transform),
//! the deep CCA loss and its gradient under `Autodiff<B>`, and a fusion forward, each against
//! the `ndarray` reference (wgpu runs through Mesa's lavapipe in CI; CUDA where there is a GPU).

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use mm_core::cca::LinearCcaConfig;
use mm_core::cca::covariance::{to_device, to_host};
use mm_core::cca::deep::DeepCcaLossConfig;
use mm_core::fusion::{Fusion, LowRankFusionConfig};
use mm_data::synth::cca::correlated_views;
use mm_tests::copy_module;

/// Canonical correlations, transformed X, deep CCA loss, its gradient in X, a fusion output.
struct Outputs {
    rho: Vec<f64>,
    transformed: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
    fused: Vec<f64>,
}

fn outputs<B: AutodiffBackend>(device: &B::Device) -> Outputs {
    let (x, y) = correlated_views(300, 5, 4, &[0.9, 0.6], 4);
    let cca = LinearCcaConfig::new(2)
        .fit(
            to_device::<B::InnerBackend>(&x, device),
            to_device::<B::InnerBackend>(&y, device),
        )
        .unwrap();
    let transformed = to_host(
        cca.transform_x(to_device::<B::InnerBackend>(&x, device))
            .unwrap(),
    )
    .data;
    let hx = to_device::<B>(&x, device).require_grad();
    let loss = DeepCcaLossConfig::new(2)
        .init()
        .forward(hx.clone(), to_device::<B>(&y, device))
        .unwrap();
    let grads = loss.backward();
    let grad = to_host(hx.grad(&grads).unwrap()).data;
    let loss = to_host(loss.reshape([1, 1]).inner()).data[0];
    // A fusion module with the same seeded weights on every backend.
    <NdArray as Backend>::seed(&Default::default(), 7);
    let reference = LowRankFusionConfig::new(vec![5, 4], 3, 2)
        .init::<NdArray>(&Default::default())
        .unwrap();
    let fusion = copy_module(
        reference,
        LowRankFusionConfig::new(vec![5, 4], 3, 2)
            .init::<B::InnerBackend>(device)
            .unwrap(),
        device,
    );
    let fused = fusion
        .fuse(&[to_device(&x, device), to_device(&y, device)])
        .unwrap();
    Outputs {
        rho: cca.correlations,
        transformed,
        loss,
        grad,
        fused: to_host(fused).data,
    }
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn assert_close(name: &str, got: &Outputs, want: &Outputs) {
    for (what, d, tol) in [
        ("correlations", max_diff(&got.rho, &want.rho), 1e-4),
        (
            "transform",
            max_diff(&got.transformed, &want.transformed),
            1e-3,
        ),
        ("deep CCA loss", (got.loss - want.loss).abs(), 1e-4),
        ("deep CCA gradient", max_diff(&got.grad, &want.grad), 1e-4),
        ("low-rank fusion", max_diff(&got.fused, &want.fused), 1e-4),
    ] {
        assert!(d < tol, "{name} {what}: max difference {d}");
    }
}

fn reference() -> Outputs {
    outputs::<Autodiff<NdArray>>(&Default::default())
}

#[test]
fn flex_matches_ndarray() {
    let want = reference();
    assert_close(
        "flex",
        &outputs::<Autodiff<Flex>>(&Default::default()),
        &want,
    );
    // The reference itself is sane: two strong canonical pairs.
    assert!(want.rho[0] > 0.85 && want.rho[1] > 0.5, "{:?}", want.rho);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_ndarray() {
    use burn::backend::Wgpu;
    use burn::backend::wgpu::WgpuDevice;
    assert_close(
        "wgpu",
        &outputs::<Autodiff<Wgpu>>(&WgpuDevice::DefaultDevice),
        &reference(),
    );
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_ndarray() {
    use burn::backend::Cuda;
    if let Some(device) = crate::devices::cuda_device() {
        assert_close("cuda", &outputs::<Autodiff<Cuda>>(&device), &reference());
    }
}
