//! The captioner's training gradients on `Autodiff<Flex>` (the fused CPU kernels: linear,
//! attention with its own backward, the head split) against `Autodiff<NdArray>` (Burn's plain
//! ops) for the same weights and batch: every parameter's gradient within a relative 1e-3.
//! Cross-attention (queries and keys of different lengths) and the causal mask are in the
//! path, which the kernels' own tests do not cover.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::{ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use mm_core::train::{Share, StepInfo};
use mm_generate::caption::train::{CaptionBatch, caption_loss};
use mm_generate::caption::{Captioner, export_hf_captioner, load_hf_captioner};

struct Grads<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    out: Vec<Vec<f32>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let g = param
            .val()
            .grad(self.grads)
            .map(|g| g.into_data().convert::<f32>().to_vec::<f32>().unwrap())
            .unwrap_or_default();
        self.out.push(g);
    }
}

fn batch<B: Backend>(device: &B::Device) -> CaptionBatch<B> {
    let pixels: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let inputs: Vec<i64> = vec![2, 5, 6, 7, 8, 0, 2, 9, 10, 0, 0, 0];
    let targets: Vec<i64> = vec![5, 6, 7, 8, 3, 0, 9, 10, 3, 0, 0, 0];
    CaptionBatch {
        pixels: Tensor::from_data(TensorData::new(pixels, [2, 3, 16, 16]), device),
        inputs: Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [2, 6]), device),
        targets: Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [2, 6]), device),
        at: StepInfo {
            step: 0,
            share: Share::WHOLE,
            batch_size: 2,
        },
    }
}

fn gradients<B: AutodiffBackend>(model: &Captioner<B>) -> (f32, Vec<Vec<f32>>) {
    let device = Default::default();
    let (loss, _) = caption_loss(model, &batch::<B>(&device), 0, 0.0);
    let value = loss
        .clone()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap()[0];
    let grads = loss.backward();
    let mut v = Grads::<B> {
        grads: &grads,
        out: Vec::new(),
    };
    burn::module::Module::visit(model, &mut v);
    (value, v.out)
}

#[test]
fn flex_gradients_match_ndarray() {
    let _seeded = crate::seeded();
    let config = super::tiny_captioner_config(0.0);
    let tokenizer = super::tiny_tokenizer();
    let dir = tempfile::tempdir().unwrap();
    NdArray::<f32>::seed(&Default::default(), 3);
    let model = config.init::<NdArray>(&Default::default()).unwrap();
    export_hf_captioner(&model, &config, &tokenizer, dir.path()).unwrap();
    let reference =
        load_hf_captioner::<Autodiff<NdArray>>(dir.path(), &Default::default()).unwrap();
    let fused = load_hf_captioner::<Autodiff<Flex>>(dir.path(), &Default::default()).unwrap();
    {
        let b1 = batch::<Autodiff<NdArray>>(&Default::default());
        let b2 = batch::<Autodiff<Flex>>(&Default::default());
        let l1: Vec<f32> = reference
            .model
            .forward(b1.pixels, b1.inputs)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap();
        let l2: Vec<f32> = fused
            .model
            .forward(b2.pixels, b2.inputs)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap();
        let d = l1
            .iter()
            .zip(&l2)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let m = l1.iter().map(|a| a.abs()).fold(0.0f32, f32::max);
        eprintln!("logits max diff {d} (largest {m})");
    }
    label_smoothing_mixes_in_the_uniform_target(&reference.model);
    let (loss_ref, grads_ref) = gradients(&reference.model);
    let (loss_flex, grads_flex) = gradients(&fused.model);
    assert!(
        (loss_ref - loss_flex).abs() < 1e-4,
        "{loss_ref} vs {loss_flex}"
    );
    assert_eq!(grads_ref.len(), grads_flex.len());
    // Relative to each parameter's largest gradient, with a floor: the attention key biases
    // get gradients that are 0 up to rounding (a bias on every key shifts all of a query's
    // scores alike), so their rounding noise is compared with the floor, not with itself.
    let floor = 1e-4;
    let mut report = Vec::new();
    for (i, (a, b)) in grads_ref.iter().zip(&grads_flex).enumerate() {
        assert_eq!(a.len(), b.len(), "parameter {i}");
        let scale = a.iter().map(|x| x.abs()).fold(floor, f32::max);
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        report.push((diff / scale, i, scale));
    }
    report.sort_by(|x, y| y.0.total_cmp(&x.0));
    eprintln!(
        "worst parameters (relative difference, index, largest gradient): {:?}",
        &report[..5]
    );
    assert!(
        report[0].0 < 1e-3,
        "parameter {} differs by {} of its largest gradient",
        report[0].1,
        report[0].0
    );
}

/// With label smoothing `a`, the loss is `(1 - a)` times the plain one plus `a` times each
/// real token's mean `-log p` over the vocabulary, padding rows contributing nothing (Burn
/// divides both by every row, padding included).
fn label_smoothing_mixes_in_the_uniform_target<B: AutodiffBackend>(model: &Captioner<B>) {
    let device = Default::default();
    let b = batch::<B>(&device);
    let value = |a: f32| -> f32 {
        caption_loss(model, &b, 0, a)
            .0
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap()[0]
    };
    let logits: Vec<f32> = model
        .forward(b.pixels.clone(), b.inputs.clone())
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap();
    let targets: Vec<i64> = b.targets.clone().into_data().to_vec().unwrap();
    let vocab = logits.len() / targets.len();
    let mut uniform = 0.0f64;
    for (row, &t) in logits.chunks(vocab).zip(&targets) {
        if t == 0 {
            continue;
        }
        let max = row.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
        let lse = max
            + row
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        uniform += row.iter().map(|&x| lse - x as f64).sum::<f64>() / vocab as f64;
    }
    let uniform = uniform / targets.len() as f64;
    let plain = value(0.0) as f64;
    // A large weight, so that the uniform term (close to the plain one at random weights)
    // moves the loss well beyond the tolerance.
    let smoothed = value(0.9) as f64;
    let expected = 0.1 * plain + 0.9 * uniform;
    eprintln!("label smoothing 0.9: {smoothed} (expected {expected}, plain {plain})");
    assert!(
        (smoothed - expected).abs() < 2e-5,
        "smoothed loss {smoothed}, expected {expected} (plain {plain}, uniform {uniform})"
    );
    assert!(
        (expected - plain).abs() > 1e-4,
        "the check would not see smoothing ignored: plain {plain}, uniform {uniform}"
    );
}
