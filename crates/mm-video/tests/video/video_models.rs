//! Parity of the video models with their PyTorch twins (torchvision `r3d_18` and `resnet18`,
//! the guide's `Video3DCNN` and CNN+LSTM with a ResNet-18 frame encoder), in eval mode, and of
//! our 3D max pooling with `torch.nn.functional.max_pool3d`, values and gradients.
//!
//! Weights and inputs come from `mm_data::synth::weights`' formula, which the fixture script
//! (`fixtures/video_models/generate.py`) reproduces bit for bit in NumPy; the fixture holds
//! each model's key list and PyTorch's outputs. Tolerance: 1e-4 of the output's largest
//! magnitude (f32 sums over 33 M weights in a different order).

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use mm_core::hf::{HfParams, WeightMap, WeightWriter};
use mm_core::nn::pool3d::max_pool3d;
use mm_data::synth::weights::{WeightKind, formula_tensor};
use mm_video::models::{C3dConfig, CnnLstmConfig, R3dConfig, VideoClassifier};
use mm_vision::ResNetConfig;
use safetensors::SafeTensors;

type B = Flex;

const INPUT_INDEX: u64 = 1_000_000;
const NUM_CLASSES: usize = 10;

fn fixture(name: &str) -> PathBuf {
    mm_data::package_dir!()
        .join("tests/fixtures/video_models")
        .join(name)
}

/// PyTorch's outputs.
fn expected(key: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(key).unwrap();
    let data = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (t.shape().to_vec(), data)
}

/// The formula state dict of `model` (`<model>.keys.json`), as (key, shape, values).
fn state_dict(model: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let text = std::fs::read_to_string(fixture(&format!("{model}.keys.json"))).unwrap();
    let keys: Vec<(String, Vec<usize>, String)> = serde_json::from_str(&text).unwrap();
    keys.into_iter()
        .enumerate()
        .map(|(i, (key, shape, kind))| {
            let kind = WeightKind::from_name(&kind, &shape).unwrap();
            let n = shape.iter().product();
            let values = formula_tensor(i as u64, n, kind);
            (key, shape, values)
        })
        .collect()
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, s, v)| {
            (
                k.clone(),
                s.clone(),
                v.iter().flat_map(|f| f.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, s, d)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Loads the formula weights of `name` into `model` strictly, then checks that exporting gives
/// the same tensors back.
fn load<M: HfParams<B>>(name: &str, model: &mut M) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let dict = state_dict(name);
    write_safetensors(&path, &dict);
    WeightMap::<B>::open(&path, &[], &Default::default())
        .unwrap()
        .load_into(model, "")
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut writer = WeightWriter::new(3);
    writer.collect(model, "");
    let out = dir.path().join("export.safetensors");
    writer.write(&out, None).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let exported = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(exported.len(), dict.len(), "{name}: exported key count");
    for (key, shape, values) in &dict {
        let t = exported
            .tensor(key)
            .unwrap_or_else(|_| panic!("{name}: {key} not exported"));
        assert_eq!(t.shape(), shape.as_slice(), "{name}: {key}");
        let back: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(&back, values, "{name}: {key} exported differently");
    }
}

/// The fixture clip `[2, 3, 8, 32, 32]` (`[B, C, T, H, W]`).
fn clip() -> Tensor<B, 5> {
    let n = 2 * 3 * 8 * 32 * 32;
    let v: Vec<f32> = formula_tensor(INPUT_INDEX, n, WeightKind::Bias)
        .into_iter()
        .map(|x| x * 10.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 8, 32, 32]), &Default::default())
}

fn assert_close(name: &str, got: Tensor<B, 2>) {
    let (shape, want) = expected(name);
    assert_eq!(got.dims().to_vec(), shape, "{name}: shape");
    let got = got.into_data().to_vec::<f32>().unwrap();
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{name}: max |diff| {worst} (scale {scale})"
    );
}

#[test]
fn r3d_18_matches_torchvision() {
    let mut model = R3dConfig::new(NUM_CLASSES)
        .init::<B>(&Default::default())
        .unwrap();
    load("r3d_18", &mut model);
    assert_close("r3d_18", model.forward(clip()));
}

#[test]
fn guide_3d_cnn_matches_pytorch() {
    let mut model = C3dConfig::new(NUM_CLASSES)
        .init::<B>(&Default::default())
        .unwrap();
    load("c3d", &mut model);
    assert_close("c3d", model.forward(clip()));
}

#[test]
fn resnet18_matches_torchvision() {
    let mut model = ResNetConfig::new()
        .with_num_classes(Some(NUM_CLASSES))
        .init::<B>(&Default::default())
        .unwrap();
    load("resnet18", &mut model);
    let frames = clip()
        .slice([0..2, 0..3, 0..1, 0..32, 0..32])
        .reshape([2, 3, 32, 32]);
    assert_close("resnet18", model.forward(frames));
}

#[test]
fn cnn_lstm_matches_the_guides_classifier() {
    let config = CnnLstmConfig::new(NUM_CLASSES).with_hidden(64);
    let mut model = config.init::<B>(&Default::default()).unwrap();
    load("cnn_lstm", &mut model);
    assert_close("cnn_lstm", model.logits(clip().swap_dims(1, 2)));
}

#[test]
fn a_wrong_checkpoint_names_the_key() {
    let mut model = C3dConfig::new(NUM_CLASSES)
        .with_width(8)
        .init::<B>(&Default::default())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_safetensors(&path, &state_dict("c3d"));
    let err = WeightMap::<B>::open(&path, &[], &Default::default())
        .unwrap()
        .load_into(&mut model, "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv3d.0.weight"), "{err}");
}

#[test]
fn max_pool3d_matches_pytorch_values_and_gradients() {
    type A = Autodiff<Flex>;
    let n = 2 * 3 * 7 * 9 * 10;
    let v: Vec<f32> = formula_tensor(INPUT_INDEX + 1, n, WeightKind::Bias)
        .into_iter()
        .map(|x| x * 10.0)
        .collect();
    let x = Tensor::<A, 5>::from_data(TensorData::new(v, [2, 3, 7, 9, 10]), &Default::default())
        .require_grad();
    let y = max_pool3d(x.clone(), [2, 3, 3], [2, 2, 1], [1, 1, 0]);
    let (shape, want) = expected("pool3d");
    assert_eq!(y.dims().to_vec(), shape);
    let got = y.clone().into_data().to_vec::<f32>().unwrap();
    assert_eq!(got, want, "pooled values");
    let w: Vec<f32> = formula_tensor(INPUT_INDEX + 2, want.len(), WeightKind::Bias)
        .into_iter()
        .map(|x| x * 10.0)
        .collect();
    let w = Tensor::<A, 5>::from_data(TensorData::new(w, [2, 3, 4, 5, 8]), &Default::default());
    let grads = (y * w).sum().backward();
    let grad = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    let (_, want_grad) = expected("pool3d_grad");
    let worst = grad
        .iter()
        .zip(&want_grad)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-6, "gradient max |diff| {worst}");
}
