//! ViLT against transformers: tiny random `ViltForQuestionAnswering`, `ViltForMaskedLM` and
//! `ViltForImageAndTextRetrieval` folders (sharing one `ViltModel`; see
//! `fixtures/hf_vilt/generate.py`) load into ours and give transformers' pooled output, VQA,
//! MLM (text positions) and ITM logits within 1e-4, on Flex and on NdArray; an exported model
//! loads back with the same logits; folders that disagree with their config are named errors.

use std::path::{Path, PathBuf};

use crate::common::{assert_close, floats, read_json};
use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use mm_vl::vilt::{LoadedVilt, ViltOutput, export_hf_vilt, load_hf_vilt};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/hf_vilt")
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn encode<B: Backend>(loaded: &LoadedVilt<B>, exp: &Value) -> ViltOutput<B> {
    let device = Default::default();
    let ints = |key: &str| -> Tensor<B, 2, Int> {
        let rows = exp[key].as_array().unwrap();
        let data: Vec<i64> = rows
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
            .collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), data_len(rows)]), &device)
    };
    let pixels = floats(&exp["pixel_values"]);
    let pixels = Tensor::from_data(TensorData::new(pixels, [2, 3, 32, 32]), &device);
    loaded
        .model
        .encode(ints("input_ids"), ints("attention_mask"), pixels)
        .unwrap()
}

fn data_len(rows: &[Value]) -> usize {
    rows[0].as_array().unwrap().len()
}

fn check_all<B: Backend>(backend: &str) {
    let exp = read_json(&fixtures().join("expected.json"));
    let device = Default::default();
    let vqa = load_hf_vilt::<B>(&fixtures().join("vqa"), &device).unwrap();
    assert_eq!(vqa.answers, ["yes", "no", "red", "circle", "two"]);
    let out = encode(&vqa, &exp);
    assert_close(
        &format!("{backend} pooled"),
        &host(out.pooled.clone()),
        &floats(&exp["pooled"]),
        TOLERANCE,
    );
    let logits = vqa.model.vqa_logits(&out).unwrap();
    assert_close(
        &format!("{backend} VQA logits"),
        &host(logits),
        &floats(&exp["vqa_logits"]),
        TOLERANCE,
    );
    let mlm = load_hf_vilt::<B>(&fixtures().join("mlm"), &device).unwrap();
    let logits = mlm.model.mlm_logits(&encode(&mlm, &exp)).unwrap();
    assert_eq!(logits.dims(), [2, 10, 64]);
    assert_close(
        &format!("{backend} MLM logits"),
        &host(logits),
        &floats(&exp["mlm_logits"]),
        TOLERANCE,
    );
    let itm = load_hf_vilt::<B>(&fixtures().join("itm"), &device).unwrap();
    let logits = itm.model.itm_logits(&encode(&itm, &exp)).unwrap();
    assert_close(
        &format!("{backend} ITM logits"),
        &host(logits),
        &floats(&exp["itm_logits"]),
        TOLERANCE,
    );
    // Each folder has only its own head.
    assert!(itm.model.vqa_logits(&out).is_err() && vqa.model.mlm_logits(&out).is_err());
}

#[test]
fn tiny_vilt_folders_match_transformers() {
    check_all::<Flex>("flex");
    check_all::<NdArray>("ndarray");
}

#[test]
fn export_loads_back_with_the_same_logits() {
    let exp = read_json(&fixtures().join("expected.json"));
    let device = Default::default();
    let vqa = load_hf_vilt::<Flex>(&fixtures().join("vqa"), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    export_hf_vilt(&vqa.model, &vqa.config, &vqa.answers, dir.path()).unwrap();
    let config = read_json(&dir.path().join("config.json"));
    assert_eq!(config["architectures"][0], "ViltForQuestionAnswering");
    assert_eq!(config["id2label"]["3"], "circle");
    let back = load_hf_vilt::<Flex>(dir.path(), &device).unwrap();
    assert_eq!(back.config, vqa.config);
    let logits = back.model.vqa_logits(&encode(&back, &exp)).unwrap();
    assert_close(
        "exported VQA logits",
        &host(logits),
        &floats(&exp["vqa_logits"]),
        TOLERANCE,
    );
    // Answer names that do not fit the head are refused.
    let err = export_hf_vilt(&vqa.model, &vqa.config, &["yes".into()], dir.path()).unwrap_err();
    assert!(err.to_string().contains("answer names"), "{err}");
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn folders_that_disagree_with_their_config_are_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let edit = |edit: &dyn Fn(&mut Value)| {
        let path = dir.path().join("config.json");
        let mut v = read_json(&fixtures().join("vqa/config.json"));
        edit(&mut v);
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    };
    copy_folder(&fixtures().join("vqa"), dir.path());
    edit(&|v| v["hidden_size"] = 48.into());
    let err = load_hf_vilt::<Flex>(dir.path(), &device).unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
    edit(&|v| v["patch_size"] = 5.into());
    let err = load_hf_vilt::<Flex>(dir.path(), &device).unwrap_err();
    assert!(err.to_string().contains("patch_size"), "{err}");
    edit(&|v| {
        v.as_object_mut().unwrap().remove("id2label");
    });
    let err = load_hf_vilt::<Flex>(dir.path(), &device).unwrap_err();
    assert!(err.to_string().contains("id2label"), "{err}");
    edit(&|v| v["num_hidden_layers"] = 1.into());
    let err = load_hf_vilt::<Flex>(dir.path(), &device).unwrap_err();
    assert!(err.to_string().contains("encoder.layer.1"), "{err}");
    // Wrong-size inputs are refused before they reach the tensors.
    let vqa = load_hf_vilt::<Flex>(&fixtures().join("vqa"), &device).unwrap();
    let ids = Tensor::<Flex, 2, Int>::zeros([1, 20], &device);
    let err = vqa
        .model
        .encode(ids.clone(), ids, Tensor::zeros([1, 3, 32, 32], &device))
        .unwrap_err();
    assert!(err.to_string().contains("20 text tokens"), "{err}");
    let ids = Tensor::<Flex, 2, Int>::zeros([1, 4], &device);
    let err = vqa
        .model
        .encode(ids.clone(), ids, Tensor::zeros([1, 3, 48, 32], &device))
        .unwrap_err();
    assert!(err.to_string().contains("resize"), "{err}");
}
