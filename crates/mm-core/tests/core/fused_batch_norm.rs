//! `mm_core::nn::fused::batch_norm` against Burn's `BatchNorm` on ndarray in f64: training
//! (batch statistics, gradients, running statistics after two steps) and inference.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::{Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use mm_core::nn::fused::batch_norm;

use super::fused::{assert_all_close, tensor};

/// Values with a per-channel offset and spread, so every channel has its own statistics.
fn data(dims: &[usize], seed: f32) -> TensorData {
    let n: usize = dims.iter().product();
    let per_channel: usize = dims[2..].iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let c = (i / per_channel) % dims[1];
            (i as f32 * 0.37 + seed).sin() * (1.0 + c as f32 * 0.5) + c as f32 * 0.8 - 1.0
        })
        .collect();
    TensorData::new(v, dims.to_vec())
}

/// A batch norm over `channels` with gamma and beta away from 1 and 0, momentum 0.3.
fn norm<B: Backend>(channels: usize, fused: bool) -> BatchNorm<B> {
    let mut norm = BatchNormConfig::new(channels)
        .with_momentum(0.3)
        .init::<B>(&Default::default());
    let row = |offset: f32| -> Tensor<B, 1> {
        let v: Vec<f32> = (0..channels)
            .map(|c| offset + 0.4 * (c as f32 * 0.9).sin())
            .collect();
        tensor(TensorData::new(v, [channels]), fused)
    };
    norm.gamma = Param::from_tensor(row(1.0));
    norm.beta = Param::from_tensor(row(0.3));
    // Burn's initial running statistics, in the reference's dtype.
    let fill = |v: f32| tensor(TensorData::new(vec![v; channels], [channels]), fused);
    norm.running_mean = RunningState::new(fill(0.0));
    norm.running_var = RunningState::new(fill(1.0));
    norm
}

/// Two training steps on `dims`: output and gradients of x, gamma and beta of the second
/// `sum(bn(x) * r)`, then the running mean and variance after both.
fn training<B: AutodiffBackend, const D: usize>(dims: [usize; D], fused: bool) -> Vec<TensorData> {
    let norm = norm::<B>(dims[1], fused);
    let run = |x: Tensor<B, D>| {
        if fused {
            batch_norm(&norm, x)
        } else {
            norm.forward(x)
        }
    };
    let _ = run(tensor::<B, D>(data(&dims, 2.0), fused));
    let x = tensor::<B, D>(data(&dims, 0.0), fused).require_grad();
    let y = run(x.clone());
    let r = tensor::<B, D>(data(&dims, 5.0), fused);
    let grads = (y.clone() * r).sum().backward();
    vec![
        y.into_data(),
        x.grad(&grads).unwrap().into_data(),
        norm.gamma.val().grad(&grads).unwrap().into_data(),
        norm.beta.val().grad(&grads).unwrap().into_data(),
        norm.running_mean.value().into_data(),
        norm.running_var.value().into_data(),
    ]
    .into_iter()
    .map(|d| d.convert::<f32>())
    .collect()
}

#[test]
fn batch_norm_training_matches_burns_batch_norm() {
    let names = [
        "output",
        "x grad",
        "gamma grad",
        "beta grad",
        "running mean",
        "running var",
    ];
    let check = |what: &str, got: Vec<TensorData>, expected: Vec<TensorData>| {
        for ((g, e), name) in got.into_iter().zip(expected).zip(names) {
            assert_all_close(what, [name], [g], [e], 1e-5);
        }
    };
    let dims = [4, 3, 5, 6];
    let got = training::<Autodiff<Flex>, 4>(dims, true);
    check("2d", got, training::<Autodiff<NdArray>, 4>(dims, false));
    let dims = [2, 5, 3, 4, 4];
    let got = training::<Autodiff<Flex>, 5>(dims, true);
    check("3d", got, training::<Autodiff<NdArray>, 5>(dims, false));
    let dims = [7, 6];
    let got = training::<Autodiff<Flex>, 2>(dims, true);
    check("1d", got, training::<Autodiff<NdArray>, 2>(dims, false));
}

/// `norm` with running statistics away from their initial zeros and ones.
fn with_running<B: Backend>(mut norm: BatchNorm<B>) -> BatchNorm<B> {
    let device = Default::default();
    let running = |seed: f32, offset: f32| -> Tensor<B, 1> {
        let v: Vec<f32> = (0..4)
            .map(|c| offset + (c as f32 + seed).sin() * 0.5)
            .collect();
        Tensor::from_data(TensorData::new(v, [4]), &device)
    };
    norm.running_mean = RunningState::new(running(1.0, 0.2));
    norm.running_var = RunningState::new(running(2.0, 1.5));
    norm
}

#[test]
fn batch_norm_inference_uses_the_running_statistics_as_burn_does() {
    let dims = [3, 4, 5, 5];
    let fused: BatchNorm<Flex> = with_running(norm::<Flex>(4, true));
    let plain: BatchNorm<NdArray> = with_running(norm::<NdArray>(4, true));
    let got = batch_norm(
        &fused,
        Tensor::<Flex, 4>::from_data(data(&dims, 0.0), &Default::default()),
    );
    let expected = plain.forward(Tensor::<NdArray, 4>::from_data(
        data(&dims, 0.0),
        &Default::default(),
    ));
    assert_all_close(
        "inference",
        ["output"],
        [got.into_data()],
        [expected.into_data()],
        1e-6,
    );
}
