//! The runner against TensorFlow.js's own outputs on a tiny graph
//! (`tests/fixtures/tfjs/make_tiny_graph.py`, `run_tfjs.mjs`), and its errors.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};

use super::format::{base64_decode, f16_to_f32};
use super::{GraphModel, TfjsError, TfjsModel};

type B = NdArray;

fn tiny() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/tfjs/tiny")
}

fn input() -> Tensor<B, 4> {
    let raw = std::fs::read(tiny().join("input.f32")).unwrap();
    let v: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_data(TensorData::new(v, [1, 10, 10, 3]), &Default::default()).permute([0, 3, 1, 2])
}

#[test]
fn tiny_graph_matches_tensorflow_js() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("expected.json")).unwrap())
            .unwrap();
    let model =
        TfjsModel::<B>::new(GraphModel::load(&tiny()).unwrap(), &Default::default()).unwrap();
    let names = ["mp", "up2", "d1", "sub"];
    let outs = model.run(&[("x", input())], &names).unwrap();
    for (name, out) in names.iter().zip(outs) {
        let want = &expected[*name];
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let out = out.permute([0, 2, 3, 1]);
        assert_eq!(out.dims().to_vec(), shape, "{name}: shape");
        let got = out.into_data().to_vec::<f32>().unwrap();
        for (i, (g, w)) in got
            .iter()
            .zip(want["values"].as_array().unwrap())
            .enumerate()
        {
            let w = w.as_f64().unwrap() as f32;
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{name}[{i}]: {g} vs {w}"
            );
        }
    }
}

#[test]
fn half_floats_and_base64_decode() {
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    assert_eq!(base64_decode("U0FNRQ==").unwrap(), b"SAME");
    assert_eq!(base64_decode("Qmlhc0FkZA==").unwrap(), b"BiasAdd");
    assert!(base64_decode("no spaces allowed").is_none());
}

/// A copy of the tiny model in a temporary folder, `edit`ed first.
fn edited(edit: impl FnOnce(&mut serde_json::Value, &mut Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("model.json")).unwrap()).unwrap();
    let mut weights = std::fs::read(tiny().join("weights.bin")).unwrap();
    edit(&mut json, &mut weights);
    std::fs::write(dir.path().join("model.json"), json.to_string()).unwrap();
    std::fs::write(dir.path().join("weights.bin"), weights).unwrap();
    dir
}

#[test]
fn bad_models_are_named_errors() {
    let missing = GraphModel::load(Path::new("/nonexistent/model.json")).unwrap_err();
    assert!(matches!(missing, TfjsError::Io(ref m) if m.contains("/nonexistent/model.json")));

    let short = edited(|_, w| w.truncate(100));
    let err = GraphModel::load(short.path()).unwrap_err().to_string();
    assert!(err.contains("runs past the end"), "{err}");

    // A shape whose element count overflows, and one that merely outgrows the shards.
    for dims in [
        serde_json::json!([u64::MAX, 3]),
        serde_json::json!([100000, 100000]),
    ] {
        let huge = edited(|j, _| j["weightsManifest"][0]["weights"][0]["shape"] = dims.clone());
        let err = GraphModel::load(huge.path()).unwrap_err().to_string();
        assert!(err.contains("runs past the end"), "{dims}: {err}");
    }
    // Shard paths stay inside the model's folder.
    for path in ["../model.json", "/etc/hostname", "sub/../../x.bin"] {
        let outside = edited(|j, _| j["weightsManifest"][0]["paths"][0] = path.into());
        let err = GraphModel::load(outside.path()).unwrap_err().to_string();
        assert!(err.contains("leaves the model's folder"), "{path}: {err}");
    }

    let no_nodes = edited(|j, _| j["modelTopology"] = serde_json::json!({}));
    let err = GraphModel::load(no_nodes.path()).unwrap_err().to_string();
    assert!(err.contains("no modelTopology.node"), "{err}");

    let odd_op = edited(|j, _| {
        let nodes = j["modelTopology"]["node"].as_array_mut().unwrap();
        let sg = nodes.iter_mut().find(|n| n["name"] == "sg").unwrap();
        sg["op"] = "Softplus".into();
    });
    let model = TfjsModel::<B>::new(
        GraphModel::load(odd_op.path()).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let err = model
        .run(&[("x", input())], &["mp"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("node sg (Softplus)"), "{err}");
    // What does not depend on the unsupported node still runs.
    assert!(model.run(&[("x", input())], &["d1"]).is_ok());

    let model =
        TfjsModel::<B>::new(GraphModel::load(&tiny()).unwrap(), &Default::default()).unwrap();
    let err = model.run(&[], &["d1"]).unwrap_err().to_string();
    assert!(err.contains("an input that was not fed"), "{err}");
    let err = model
        .run(&[("x", input())], &["nope"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no node named nope"), "{err}");
}

#[test]
fn constant_resizes_scale_with_an_input_larger_than_declared() {
    // Declared 10x10 (as converters write it for a fixed-size model), fed 20x20.
    let fixed = edited(|j, _| {
        let nodes = j["modelTopology"]["node"].as_array_mut().unwrap();
        let x = nodes.iter_mut().find(|n| n["name"] == "x").unwrap();
        let dims = x["attr"]["shape"]["shape"]["dim"].as_array_mut().unwrap();
        dims[1]["size"] = "10".into();
        dims[2]["size"] = "10".into();
    });
    let model =
        TfjsModel::<B>::new(GraphModel::load(fixed.path()).unwrap(), &Default::default()).unwrap();
    let big: Tensor<B, 4> = Tensor::ones([1, 3, 20, 20], &Default::default());
    let outs = model.run(&[("x", big)], &["up", "up2"]).unwrap();
    assert_eq!(outs[0].dims(), [1, 8, 16, 16]);
    assert_eq!(outs[1].dims(), [1, 8, 12, 10]);
    // At the declared size the constants hold as written.
    let outs = model.run(&[("x", input())], &["up", "up2"]).unwrap();
    assert_eq!(outs[0].dims(), [1, 8, 8, 8]);
    assert_eq!(outs[1].dims(), [1, 8, 6, 5]);
}

#[test]
fn same_padding_and_resize_follow_tensorflow() {
    use super::layout::{resize_matrix, same_padding};
    // SAME puts the odd pixel after: 10 wide, 3x3 at stride 2 -> 5 out, padding (0, 1).
    assert_eq!(same_padding(10, 3, 2, 1), (0, 1));
    assert_eq!(same_padding(9, 3, 2, 1), (1, 1));
    assert_eq!(same_padding(8, 1, 1, 1), (0, 0));
    assert_eq!(same_padding(8, 3, 1, 2), (2, 2));
    // Legacy resize 2 -> 4: sources 0, 0.5, 1, 1.5 (the last clamped to the edge).
    let m = resize_matrix(2, 4, false, false);
    assert_eq!(m, vec![1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0]);
    // Half-pixel centres 2 -> 4: sources -0.25, 0.25, 0.75, 1.25.
    let m = resize_matrix(2, 4, false, true);
    assert_eq!(m, vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0]);
    // Aligned corners 3 -> 5: every other output is an input.
    let m = resize_matrix(3, 5, true, false);
    assert_eq!(&m[..3], &[1.0, 0.0, 0.0]);
    assert_eq!(&m[6..9], &[0.0, 1.0, 0.0]);
    assert_eq!(&m[12..], &[0.0, 0.0, 1.0]);
}
