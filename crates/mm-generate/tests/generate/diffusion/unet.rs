//! `UNet2DConditionModel` against diffusers 0.35.2 (`fixtures/unet/generate.py`): two tiny
//! random folders (cross-attention and plain blocks, conv and linear projections, per-block
//! heads, two transformer layers, both timestep-feature orders) loaded strictly by our key
//! table give diffusers' output within 1e-4; a folder we write loads back to the same output;
//! folders that ask for what is not implemented are refused by name.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use mm_generate::diffusion::folder::FolderError;
use mm_generate::diffusion::unet::{load_unet, read_unet_config, save_unet};
use serde_json::Value;

use super::common::floats;

type B = Flex;

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    super::common::fixtures("unet")
}

fn shape<const D: usize>(v: &Value) -> [usize; D] {
    let dims: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    dims.try_into().unwrap()
}

fn run(dir: &Path, case: &Value) -> Vec<f32> {
    let device = Default::default();
    let (unet, _) = load_unet::<B>(dir, &device).unwrap();
    let sample = Tensor::<B, 4>::from_data(
        TensorData::new(floats(&case["sample"]), shape::<4>(&case["sample_shape"])),
        &device,
    );
    let timesteps = Tensor::<B, 1>::from_floats(floats(&case["timesteps"]).as_slice(), &device);
    let context = Tensor::<B, 3>::from_data(
        TensorData::new(floats(&case["context"]), shape::<3>(&case["context_shape"])),
        &device,
    );
    let out = unet.forward(sample, timesteps, context);
    assert_eq!(out.dims(), shape::<4>(&case["output_shape"]));
    out.into_data().to_vec().unwrap()
}

fn max_error(ours: &[f32], theirs: &[f32]) -> f32 {
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn tiny_unets_match_diffusers_and_survive_a_round_trip() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    for name in ["small", "deep"] {
        let case = &expected[name];
        let theirs = floats(&case["output"]);
        let ours = run(&fixtures().join(name), case);
        let err = max_error(&ours, &theirs);
        assert!(err <= TOLERANCE, "{name}: max error {err:e}");
        let spread = theirs.iter().map(|x| x.abs()).fold(0.0, f32::max);
        assert!(spread > 0.1, "{name}: the reference output is degenerate");

        let dir = tempfile::tempdir().unwrap();
        let (unet, config) = load_unet::<B>(&fixtures().join(name), &Default::default()).unwrap();
        save_unet(&unet, &config, dir.path()).unwrap();
        assert_eq!(read_unet_config(dir.path()).unwrap(), config);
        let again = run(dir.path(), case);
        assert_eq!(max_error(&again, &ours), 0.0, "{name}: round trip");
    }
}

#[test]
fn unsupported_or_broken_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("small/config.json")).unwrap(),
    )
    .unwrap();
    let write = |value: &Value| {
        std::fs::write(dir.path().join("config.json"), value.to_string()).unwrap();
    };
    for (key, value) in [
        ("class_embed_type", Value::from("timestep")),
        ("resnet_time_scale_shift", Value::from("scale_shift")),
        (
            "mid_block_type",
            Value::from("UNetMidBlock2DSimpleCrossAttn"),
        ),
        ("only_cross_attention", Value::from(true)),
        ("attention_head_dim", Value::from(3)),
    ] {
        let mut c = config.clone();
        c[key] = value;
        write(&c);
        let err = read_unet_config(dir.path()).unwrap_err().to_string();
        let named = key.replace("attention_head_dim", "heads");
        assert!(err.contains(&named), "{key}: {err}");
    }
    write(&config);
    let err = load_unet::<B>(dir.path(), &Default::default()).unwrap_err();
    assert!(matches!(err, FolderError::Weights(_)), "{err}");
    assert!(err.to_string().contains("diffusion_pytorch_model"), "{err}");
    std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
    assert!(read_unet_config(dir.path()).is_err());
}
