//! HF `CLIPModel` folders load with transformers' numbers: preprocessing from raw PNG files
//! (RGB, grayscale, RGBA; wide, tall, tiny), image and text features and logits of two tiny
//! random checkpoints (quick_gelu and gelu) within 1e-4. Reference:
//! `tests/fixtures/hf_clip/generate.py`. Also: strict loading errors, and export round trips.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::tensor::Tensor;
use mm_text::TextBatch;
use mm_vision::{AlphaMode, load_image_with};
use mm_vl::hf::{LoadedClip, export_hf_clip, load_any_clip, load_hf_clip};
use serde_json::Value;

use crate::common::floats;

type B = NdArray;
const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/hf_clip")
}

fn expected() -> Value {
    crate::common::read_json(&fixtures().join("expected.json"))
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    crate::common::assert_close(what, got, want, TOLERANCE);
}

fn host(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Runs the loaded model on the fixture photos and texts: (pixels, image features, text
/// features, logits per image).
fn run(loaded: &LoadedClip<B>, exp: &Value) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let device = Default::default();
    let images: Vec<_> = exp["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| load_image_with(fixtures().join(n.as_str().unwrap()), AlphaMode::Drop).unwrap())
        .collect();
    let batch = loaded.processor.preprocess_batch(&images);
    let pixels = batch.data.clone();
    let image_features = loaded.model.image_features(batch.to_tensor::<B>(&device));
    let texts: Vec<&str> = exp["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let tokens = loaded
        .tokenizer
        .encode_batch(&texts, loaded.model.context_length())
        .unwrap();
    let (ids, eot_positions) = tokens.to_tensors::<B>(&device);
    let text_features = loaded.model.text_features(TextBatch { ids, eot_positions });
    let norm = |t: Tensor<B, 2>| mm_core::encoder::l2_normalize(t);
    let logits = norm(image_features.clone()).matmul(norm(text_features.clone()).transpose())
        * loaded.model.logit_scale.scale().unsqueeze_dim::<2>(1);
    (
        pixels,
        host(image_features),
        host(text_features),
        host(logits),
    )
}

#[test]
fn tiny_checkpoints_match_transformers() {
    let exp = expected();
    for name in ["quick_gelu", "gelu"] {
        let want = &exp["configs"][name];
        let loaded = load_hf_clip::<B>(&fixtures().join(name), &Default::default()).unwrap();
        let ids: Vec<i64> = floats(&want["input_ids"])
            .iter()
            .map(|v| *v as i64)
            .collect();
        let context = loaded.model.context_length();
        let texts: Vec<&str> = exp["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(
            loaded.tokenizer.encode_batch(&texts, context).unwrap().ids,
            ids,
            "{name}: token ids"
        );
        let (pixels, image, text, logits) = run(&loaded, &exp);
        assert_close(
            &format!("{name}: pixel_values"),
            &pixels,
            &floats(&want["pixel_values"]),
        );
        assert_close(
            &format!("{name}: image features"),
            &image,
            &floats(&want["image_features"]),
        );
        assert_close(
            &format!("{name}: text features"),
            &text,
            &floats(&want["text_features"]),
        );
        assert_close(
            &format!("{name}: logits"),
            &logits,
            &floats(&want["logits_per_image"]),
        );
    }
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn weights_that_disagree_with_the_config_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Default::default();

    let fewer = tmp.path().join("fewer");
    copy_folder(&fixtures().join("quick_gelu"), &fewer);
    edit_config(&fewer, |v| v["text_config"]["num_hidden_layers"] = 1.into());
    let err = load_hf_clip::<B>(&fewer, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unexpected weights")
            && err.contains("text_model.encoder.layers.1.mlp.fc1.weight"),
        "{err}"
    );

    let more = tmp.path().join("more");
    copy_folder(&fixtures().join("quick_gelu"), &more);
    edit_config(&more, |v| {
        v["vision_config"]["num_hidden_layers"] = 3.into()
    });
    let err = load_hf_clip::<B>(&more, &device).err().unwrap().to_string();
    assert!(
        err.contains("missing weights") && err.contains("vision_model.encoder.layers.2."),
        "{err}"
    );

    let wider = tmp.path().join("wider");
    copy_folder(&fixtures().join("quick_gelu"), &wider);
    edit_config(&wider, |v| v["projection_dim"] = 32.into());
    let err = load_hf_clip::<B>(&wider, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("has shape") && err.contains("projection"),
        "{err}"
    );

    let bad_act = tmp.path().join("act");
    copy_folder(&fixtures().join("quick_gelu"), &bad_act);
    edit_config(&bad_act, |v| {
        v["text_config"]["hidden_act"] = "swish".into()
    });
    let err = load_hf_clip::<B>(&bad_act, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("hidden_act `swish`"), "{err}");

    let err = load_hf_clip::<B>(&tmp.path().join("none"), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn export_round_trips_to_the_same_outputs() {
    let exp = expected();
    let tmp = tempfile::tempdir().unwrap();
    let device = Default::default();
    for name in ["quick_gelu", "gelu"] {
        let loaded = load_hf_clip::<B>(&fixtures().join(name), &device).unwrap();
        let out = tmp.path().join(name);
        export_hf_clip(
            &loaded.model,
            &loaded.config,
            &loaded.processor,
            &loaded.tokenizer,
            &out,
        )
        .unwrap();
        let again = load_any_clip::<B>(&out, &device).unwrap();
        assert_eq!(again.config, loaded.config, "{name}: config");
        assert_eq!(again.processor, loaded.processor, "{name}: preprocessing");
        let (a, b) = (run(&loaded, &exp), run(&again, &exp));
        assert_eq!(a.1, b.1, "{name}: image features after export");
        assert_eq!(a.2, b.2, "{name}: text features after export");
        assert_eq!(a.3, b.3, "{name}: logits after export");
    }
}

#[test]
fn half_precision_weights_load_as_stored() {
    // The fixtures are float16 on disk; the logit scale 1.7 rounds to 1.7001953 in float16.
    let loaded = load_hf_clip::<B>(&fixtures().join("quick_gelu"), &Default::default()).unwrap();
    let s: f32 = loaded.model.logit_scale.value.val().into_scalar();
    assert_eq!(s, 1.700_195_3);
}
