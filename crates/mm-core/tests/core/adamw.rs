//! `mm_core::train::AdamWConfig` against Burn's own AdamW: the same weights after several
//! steps (the fused pass on Flex, Burn's ops on ndarray), with and without clipping, and
//! optimizer checkpoints that load from one into the other.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::grad_clipping::GradientClippingConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use mm_core::train::AdamWConfig;
use mm_data::rng::SplitMix64;

/// Inputs and a layer whose weight (150 x 130) spans two of the fused pass's tasks.
const IN: usize = 150;
const OUT: usize = 130;
const LR: f64 = 0.01;

fn batch<B: AutodiffBackend>(seed: u64, device: &B::Device) -> Tensor<B, 2> {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..8 * IN)
        .map(|_| rng.uniform() as f32 * 4.0 - 2.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [8, IN]), device)
}

/// One step of `optim` on a loss with large gradients (so norm clipping bites).
fn step<B: AutodiffBackend, O: Optimizer<Linear<B>, B>>(
    model: Linear<B>,
    optim: &mut O,
    seed: u64,
) -> Linear<B> {
    let device = model.weight.device();
    let y = model.forward(batch::<B>(seed, &device));
    let loss = (y.clone() * y).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(LR, model, grads)
}

fn max_difference<B: AutodiffBackend>(a: &Linear<B>, b: &Linear<B>) -> f32 {
    let pairs = [
        (a.weight.val().inner(), b.weight.val().inner()),
        (
            a.bias.as_ref().unwrap().val().inner().unsqueeze(),
            b.bias.as_ref().unwrap().val().inner().unsqueeze(),
        ),
    ];
    pairs
        .into_iter()
        .map(|(x, y)| (x - y).abs().max().into_scalar().elem::<f32>())
        .fold(0.0, f32::max)
}

/// A layer with its weights drawn now (a lazily initialized one draws them again in each clone).
fn layer<B: AutodiffBackend>(device: &B::Device) -> Linear<B> {
    let layer: Linear<B> = LinearConfig::new(IN, OUT).init(device);
    let _ = (layer.weight.val(), layer.bias.as_ref().map(|b| b.val()));
    layer
}

/// Five steps of ours and of Burn's from the same weights; the largest weight difference.
fn compare<B: AutodiffBackend>(clip: Option<GradientClippingConfig>) -> f32 {
    let device = B::Device::default();
    let start = layer::<B>(&device);
    let ours_config = AdamWConfig::new()
        .with_weight_decay(0.1)
        .with_grad_clipping(clip.clone());
    let mut ours = ours_config.init::<B, Linear<B>>();
    let mut burns = burn::optim::AdamWConfig::new()
        .with_weight_decay(0.1)
        .with_grad_clipping(clip)
        .init::<B, Linear<B>>();
    let (mut a, mut b) = (start.clone(), start.clone());
    for seed in 0..5 {
        a = step(a, &mut ours, seed);
        b = step(b, &mut burns, seed);
    }
    let moved = max_difference(&start, &a);
    assert!(moved > 0.01, "the weights moved by {moved} only");
    max_difference(&a, &b)
}

#[test]
fn the_fused_step_on_flex_matches_burns_adamw() {
    for clip in [
        None,
        Some(GradientClippingConfig::Norm(0.5)),
        Some(GradientClippingConfig::Value(0.05)),
    ] {
        let d = compare::<Autodiff<Flex>>(clip.clone());
        assert!(d <= 1e-6, "{clip:?}: weights differ by {d}");
    }
}

#[test]
fn other_backends_get_burns_adamw_exactly() {
    for clip in [None, Some(GradientClippingConfig::Norm(0.5))] {
        assert_eq!(compare::<Autodiff<NdArray>>(clip), 0.0);
    }
}

#[test]
fn optimizer_checkpoints_load_from_ours_into_burns() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let start = layer::<B>(&device);
    let clip = Some(GradientClippingConfig::Norm(0.5));
    let mut ours = AdamWConfig::new()
        .with_grad_clipping(clip.clone())
        .init::<B, Linear<B>>();
    let mut model = start;
    for seed in 0..3 {
        model = step(model, &mut ours, seed);
    }
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder.record(ours.to_record(), ()).unwrap();
    let burns = burn::optim::AdamWConfig::new()
        .with_grad_clipping(clip)
        .init::<B, Linear<B>>();
    let mut burns = burns.load_record(recorder.load(bytes, &device).unwrap());
    let a = step(model.clone(), &mut ours, 3);
    let b = step(model.clone(), &mut burns, 3);
    let d = max_difference(&a, &b);
    assert!(d <= 1e-6, "after loading, the next step differs by {d}");
}
