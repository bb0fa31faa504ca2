//! The key tables of Burn's layers (`mm_core::hf::layers`) against PyTorch: a state dict with
//! linear, norms (layer, batch with running statistics, group), embedding, 1-D/2-D/3-D and
//! transposed convolutions and a two-layer LSTM loads strictly, gives PyTorch's outputs, and
//! exports back to the same tensors. Reference: `fixtures/hf_layers/generate.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::backend::ndarray::NdArrayDevice;
use burn::module::Module;
use burn::nn::conv::{
    Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Conv3d, Conv3dConfig, ConvTranspose2d,
    ConvTranspose2dConfig,
};
use burn::nn::{
    BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, LayerNorm,
    LayerNormConfig, Linear, LinearConfig, Lstm, LstmConfig, PaddingConfig1d, PaddingConfig2d,
};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use mm_core::hf::layers::lstm_layer;
use mm_core::hf::{HfError, HfParams, ParamVisitor, WeightMap, WeightWriter};

type B = NdArray<f32>;

/// Absolute tolerance on outputs: f32 kernels summing a few dozen products.
const TOL: f32 = 1e-5;

/// PyTorch's module tree, field for field.
#[derive(Module, Debug)]
struct Layers<B: Backend> {
    linear: Linear<B>,
    norm: LayerNorm<B>,
    embed: Embedding<B>,
    conv1: Conv1d<B>,
    conv2: Conv2d<B>,
    bn: BatchNorm<B>,
    gn: GroupNorm<B>,
    up: ConvTranspose2d<B>,
    conv3: Conv3d<B>,
    lstm: Vec<Lstm<B>>,
}

impl<B: Backend> HfParams<B> for Layers<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.linear.visit_hf(&format!("{prefix}linear."), v);
        self.norm.visit_hf(&format!("{prefix}norm."), v);
        self.embed.visit_hf(&format!("{prefix}embed."), v);
        self.conv1.visit_hf(&format!("{prefix}conv1."), v);
        self.conv2.visit_hf(&format!("{prefix}conv2."), v);
        self.bn.visit_hf(&format!("{prefix}bn."), v);
        self.gn.visit_hf(&format!("{prefix}gn."), v);
        self.up.visit_hf(&format!("{prefix}up."), v);
        self.conv3.visit_hf(&format!("{prefix}conv3."), v);
        for (k, layer) in self.lstm.iter_mut().enumerate() {
            lstm_layer(layer, &format!("{prefix}lstm."), k, v);
        }
    }
}

fn layers(conv2_out: usize, lstm_layers: usize, device: &NdArrayDevice) -> Layers<B> {
    Layers {
        linear: LinearConfig::new(6, 4).init(device),
        norm: LayerNormConfig::new(4).init(device),
        embed: EmbeddingConfig::new(10, 6).init(device),
        conv1: Conv1dConfig::new(3, 4, 3)
            .with_padding(PaddingConfig1d::Explicit(1, 1))
            .init(device),
        conv2: Conv2dConfig::new([3, conv2_out], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device),
        bn: BatchNormConfig::new(4).init(device),
        gn: GroupNormConfig::new(2, 4).init(device),
        up: ConvTranspose2dConfig::new([4, 2], [2, 2])
            .with_stride([2, 2])
            .init(device),
        conv3: Conv3dConfig::new([3, 4], [2, 3, 3]).init(device),
        lstm: (0..lstm_layers)
            .map(|k| LstmConfig::new(if k == 0 { 6 } else { 5 }, 5, true).init(device))
            .collect(),
    }
}

fn fixture(name: &str) -> PathBuf {
    mm_data::package_dir!()
        .join("tests/fixtures/hf_layers")
        .join(name)
}

/// Every tensor of a safetensors file as (shape, f32 values).
fn read_all(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

fn tensor<const D: usize>(
    io: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    key: &str,
) -> Tensor<B, D> {
    let (shape, values) = &io[key];
    Tensor::from_data(
        TensorData::new(values.clone(), shape.clone()),
        &Default::default(),
    )
}

fn assert_close<const D: usize>(
    ours: Tensor<B, D>,
    io: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    key: &str,
) {
    let (shape, want) = &io[key];
    assert_eq!(&ours.dims().to_vec(), shape, "{key}: shape");
    let got = ours.into_data().to_vec::<f32>().unwrap();
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= TOL,
        "{key}: max |ours - torch| = {worst:e} > {TOL:e}"
    );
}

fn loaded() -> Layers<B> {
    let device = Default::default();
    let mut model = layers(4, 2, &device);
    WeightMap::<B>::open(
        &fixture("model.safetensors"),
        &["num_batches_tracked"],
        &device,
    )
    .unwrap()
    .load_into(&mut model, "")
    .unwrap();
    model
}

#[test]
fn burn_layers_loaded_through_key_tables_give_pytorch_outputs() {
    let model = loaded();
    let io = read_all(&fixture("io.safetensors"));
    assert_close(
        model
            .norm
            .forward(model.linear.forward(tensor::<2>(&io, "in.vec"))),
        &io,
        "out.linear_norm",
    );
    let ids: Tensor<B, 2, Int> = tensor::<2>(&io, "in.ids").int();
    assert_close(model.embed.forward(ids), &io, "out.embed");
    assert_close(model.conv1.forward(tensor(&io, "in.seq")), &io, "out.conv1");
    let x = model.conv2.forward(tensor(&io, "in.img"));
    let x = model.up.forward(model.gn.forward(model.bn.forward(x)));
    assert_close(x, &io, "out.conv2_bn_gn_up");
    assert_close(model.conv3.forward(tensor(&io, "in.vid")), &io, "out.conv3");
    let mut x = tensor::<3>(&io, "in.lstm");
    for layer in &model.lstm {
        x = layer.forward(x, None).0;
    }
    assert_close(x, &io, "out.lstm");
}

#[test]
fn export_through_the_same_tables_gives_back_the_pytorch_state_dict() {
    let mut model = loaded();
    let mut writer = WeightWriter::new(3);
    writer.collect(&mut model, "");
    let out = std::env::temp_dir().join(format!("mm-hf-layers-{}.safetensors", std::process::id()));
    writer.write(&out, None).unwrap();
    let ours = read_all(&out);
    std::fs::remove_file(&out).ok();
    let mut torch = read_all(&fixture("model.safetensors"));
    torch.remove("bn.num_batches_tracked");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        torch.keys().collect::<Vec<_>>()
    );
    for (key, (shape, values)) in &torch {
        assert_eq!(&ours[key].0, shape, "{key}: shape");
        assert_eq!(&ours[key].1, values, "{key}: values");
    }
}

#[test]
fn a_mis_shaped_or_missing_tensor_is_named() {
    let device = Default::default();
    let path = fixture("model.safetensors");
    let mut wider = layers(5, 2, &device);
    let err = WeightMap::<B>::open(&path, &["num_batches_tracked"], &device)
        .unwrap()
        .load_into(&mut wider, "")
        .unwrap_err();
    assert!(
        matches!(&err, HfError::Shape { key, .. } if key == "conv2.weight"),
        "{err}"
    );
    let mut deeper = layers(4, 3, &device);
    let err = WeightMap::<B>::open(&path, &["num_batches_tracked"], &device)
        .unwrap()
        .load_into(&mut deeper, "")
        .unwrap_err();
    match &err {
        HfError::Missing { keys, .. } => {
            assert_eq!(
                keys,
                &[
                    "lstm.weight_ih_l2",
                    "lstm.bias_ih_l2",
                    "lstm.weight_hh_l2",
                    "lstm.bias_hh_l2"
                ]
            )
        }
        other => panic!("expected missing LSTM layer 2, got {other}"),
    }
    let mut shallower = layers(4, 1, &device);
    let err = WeightMap::<B>::open(&path, &["num_batches_tracked"], &device)
        .unwrap()
        .load_into(&mut shallower, "")
        .unwrap_err();
    assert!(
        matches!(&err, HfError::Unexpected { keys, .. } if keys.iter().all(|k| k.ends_with("_l1")) && keys.len() == 4),
        "{err}"
    );
}
