//! The ViT and text towers give the same outputs on every backend compiled in: `flex` against
//! the `ndarray` reference within 1e-4, `wgpu` (through Mesa's lavapipe in CI) when the `wgpu`
//! feature is on, and CUDA when the `cuda` feature is on and the machine has a GPU. The GPU
//! backends also train: the contrastive loss and its gradient in the pixels match `ndarray`'s.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use mm_core::encoder::Encoder;
use mm_tests::{copy_module, tiny_clip};
use mm_text::{ClipTokenizer, TextBatch};
use mm_vl::Clip;

const TOLERANCE: f32 = 1e-4;

/// Deterministic pixels in roughly the range CLIP normalization produces.
fn pixels<B: Backend>(device: &B::Device) -> Tensor<B, 4> {
    let data: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(data, [2, 3, 16, 16]), device)
}

fn texts<B: Backend>(device: &B::Device) -> TextBatch<B> {
    let (ids, eot_positions) = ClipTokenizer::bundled()
        .encode_batch(
            &["a red circle", "two small blue squares, side by side"],
            12,
        )
        .unwrap()
        .to_tensors::<B>(device);
    TextBatch { ids, eot_positions }
}

/// Image and text embeddings (pooled) and the last hidden states of both towers.
fn outputs<B: Backend>(model: &Clip<B>, device: &B::Device) -> Vec<Vec<f32>> {
    let vision = model.vision_model.encode_full(pixels::<B>(device));
    let text = model.text_model.encode_full(texts::<B>(device));
    let host2 = |t: Tensor<B, 2>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    let host3 = |t: Tensor<B, 3>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    vec![
        host2(vision.pooled),
        host3(vision.sequence.unwrap()),
        host2(text.pooled),
        host3(text.sequence.unwrap()),
    ]
}

fn assert_close(name: &str, a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (part, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len());
        let worst = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= TOLERANCE,
            "{name}: output {part} differs by {worst} (> {TOLERANCE})"
        );
        assert!(
            x.iter().all(|v| v.is_finite()),
            "{name}: output {part} has non-finite values"
        );
    }
}

/// The contrastive loss of the two pairs and its gradient in the pixels, under autodiff.
fn loss_and_pixel_gradient<B: AutodiffBackend>(
    model: &Clip<B>,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let pixels = pixels::<B>(device).require_grad();
    let loss = model.loss(pixels.clone(), texts::<B>(device));
    let grads = loss.backward();
    let grad = pixels
        .grad(&grads)
        .expect("the pixels take part in the loss");
    let host = |d: TensorData| d.convert::<f32>().to_vec::<f32>().unwrap();
    vec![host(loss.inner().into_data()), host(grad.into_data())]
}

/// Every output of a copy of the seeded ndarray model on backend `B`, against ndarray's.
fn assert_backend_matches<B: AutodiffBackend>(name: &str, device: &B::Device) {
    let (model, expected) = reference();
    let copy = copy_module(
        model.clone(),
        tiny_clip().init::<B>(device).unwrap(),
        device,
    );
    assert_close(name, &outputs(&copy.valid(), device), &expected);
    let train_ref = copy_module(
        model,
        tiny_clip()
            .init::<Autodiff<NdArray>>(&Default::default())
            .unwrap(),
        &Default::default(),
    );
    let want = loss_and_pixel_gradient(&train_ref, &Default::default());
    assert!(
        want[1].iter().any(|g| g.abs() > 1e-6),
        "the reference gradient is all zero"
    );
    assert_close(
        &format!("{name} (training)"),
        &loss_and_pixel_gradient(&copy, device),
        &want,
    );
}

fn reference() -> (Clip<NdArray>, Vec<Vec<f32>>) {
    let device = Default::default();
    <NdArray as Backend>::seed(&device, 7);
    let model = tiny_clip().init::<NdArray>(&device).unwrap();
    let out = outputs(&model, &device);
    (model, out)
}

#[test]
fn flex_matches_ndarray() {
    let (model, expected) = reference();
    let device = Default::default();
    let flex = copy_module(model, tiny_clip().init::<Flex>(&device).unwrap(), &device);
    assert_close("flex", &outputs(&flex, &device), &expected);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_ndarray() {
    use burn::backend::Wgpu;
    use burn::backend::wgpu::WgpuDevice;
    assert_backend_matches::<Autodiff<Wgpu>>("wgpu", &WgpuDevice::DefaultDevice);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_matches_ndarray() {
    use burn::backend::Cuda;
    if let Some(device) = crate::devices::cuda_device() {
        assert_backend_matches::<Autodiff<Cuda>>("cuda", &device);
    }
}
