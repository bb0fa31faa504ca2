//! HF CLIP folders in every form users meet them load with transformers' numbers: weights as one
//! f32 safetensors file, bf16 shards with their index, f32 PyTorch shards with theirs, or a lone
//! f16 `pytorch_model.bin`;
//! preprocessing from the hub's older `preprocessor_config.json` (bare integer sizes), the
//! nested `processor_config.json`, or none; tokenizers from `tokenizer.json` or the slow
//! tokenizer's `vocab.json` + `merges.txt`, with `tokenizer_config.json`'s pad token and
//! `model_max_length`. Then each preprocessing form alone (size forms, every resample filter,
//! each step switched off, RGB-only) on wide, tall, tiny, grayscale and RGBA photos. Within
//! 1e-4 of `tests/fixtures/hf_forms/generate.py`'s references. Also: what is missing or
//! unsupported is named.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use mm_text::TextBatch;
use mm_vision::{ImageError, load_image_with, load_processor_config};
use mm_vl::hf::load_hf_clip;
use serde_json::Value;

use crate::common::{assert_close, floats, read_json};

type B = NdArray;
const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/hf_forms")
}

fn photo(name: &str) -> PathBuf {
    mm_data::package_dir!()
        .join("tests/fixtures/hf_clip")
        .join(name)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn every_folder_form_matches_transformers() {
    let exp = read_json(&fixtures().join("expected.json"));
    let device = Default::default();
    for (name, want) in exp["folders"].as_object().unwrap() {
        let loaded = load_hf_clip::<B>(&fixtures().join(name), &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let images: Vec<_> = strings(&exp["images"])
            .iter()
            .map(|n| load_image_with(photo(n), loaded.alpha).unwrap())
            .collect();
        let batch = loaded.processor.preprocess_batch(&images);
        assert_close(
            &format!("{name}: pixel_values"),
            &batch.data,
            &floats(&want["pixel_values"]),
            TOLERANCE,
        );
        let context = loaded.model.context_length();
        let tokens = loaded
            .tokenizer
            .encode_batch(&strings(&exp["texts"]), context)
            .unwrap();
        let want_ids: Vec<i64> = floats(&want["input_ids"])
            .iter()
            .map(|&v| v as i64)
            .collect();
        assert_eq!(tokens.ids, want_ids, "{name}: token ids");
        let image = loaded.model.image_features(batch.to_tensor::<B>(&device));
        assert_close(
            &format!("{name}: image features"),
            &image.into_data().to_vec::<f32>().unwrap(),
            &floats(&want["image_features"]),
            TOLERANCE,
        );
        let (ids, eot_positions) = tokens.to_tensors::<B>(&device);
        let text = loaded.model.text_features(TextBatch { ids, eot_positions });
        assert_close(
            &format!("{name}: text features"),
            &text.into_data().to_vec::<f32>().unwrap(),
            &floats(&want["text_features"]),
            TOLERANCE,
        );
    }
}

#[test]
fn every_preprocessing_form_matches_transformers() {
    let exp = read_json(&fixtures().join("expected.json"));
    let images = strings(&exp["images"]);
    for (case, results) in exp["preprocessors"].as_object().unwrap() {
        let dir = fixtures().join("preprocessors").join(case);
        let (processor, _) = load_processor_config(&dir)
            .unwrap_or_else(|e| panic!("{case}: {e}"))
            .unwrap_or_else(|| panic!("{case}: no file found"));
        for (name, want) in images.iter().zip(results.as_array().unwrap()) {
            let what = format!("{case} / {name}");
            let decoded = load_image_with(photo(name), processor.alpha_mode());
            if want.get("error").is_some() {
                // transformers refuses it too (do_convert_rgb false on a non-RGB image).
                assert!(
                    matches!(decoded, Err(ImageError::NotRgb { .. })),
                    "{what}: {decoded:?}"
                );
                continue;
            }
            let image = decoded.unwrap_or_else(|e| panic!("{what}: {e}"));
            let shape: Vec<u32> = floats(&want["shape"]).iter().map(|&v| v as u32).collect();
            assert_eq!(
                processor.fixed_output_size(),
                Some((shape[1], shape[2])),
                "{what}: output size"
            );
            assert_close(
                &what,
                &processor.preprocess(&image),
                &floats(&want["pixel_values"]),
                TOLERANCE,
            );
        }
    }
}

fn copy_folder(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if !skip.contains(&name.to_str().unwrap()) {
            std::fs::copy(entry.path(), to.join(name)).unwrap();
        }
    }
}

fn load_error(dir: &Path) -> String {
    load_hf_clip::<B>(dir, &Default::default())
        .err()
        .expect("loading should fail")
        .to_string()
}

#[test]
fn what_is_missing_or_unsupported_is_named() {
    let tmp = tempfile::tempdir().unwrap();

    let bare = tmp.path().join("no_weights");
    copy_folder(
        &fixtures().join("single_f32"),
        &bare,
        &["model.safetensors"],
    );
    let err = load_error(&bare);
    for file in [
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
    ] {
        assert!(err.contains(file), "{err}");
    }

    let shard_gone = tmp.path().join("shard_gone");
    copy_folder(
        &fixtures().join("sharded_bf16"),
        &shard_gone,
        &["model-00002-of-00003.safetensors"],
    );
    let err = load_error(&shard_gone);
    assert!(err.contains("model-00002-of-00003.safetensors"), "{err}");

    let cut = tmp.path().join("cut_bin");
    copy_folder(&fixtures().join("bin_f16"), &cut, &[]);
    let bytes = std::fs::read(cut.join("pytorch_model.bin")).unwrap();
    std::fs::write(cut.join("pytorch_model.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(&cut);
    assert!(err.contains("pytorch_model.bin"), "{err}");

    for (settings, needle) in [
        (
            r#"{"size": 16, "crop_size": 16, "resample": 7}"#,
            "unknown resample mode 7",
        ),
        (r#"{"size": 16, "crop_size": 12}"#, "gives 12x12 images"),
        (
            r#"{"size": 16, "do_center_crop": false}"#,
            "each input's own size",
        ),
        (
            r#"{"size": 16, "crop_size": 16, "do_pad": true}"#,
            "option `do_pad`",
        ),
        ("{not json", "preprocessor_config.json"),
    ] {
        let dir = tmp.path().join("processor");
        let _ = std::fs::remove_dir_all(&dir);
        copy_folder(&fixtures().join("single_f32"), &dir, &[]);
        std::fs::write(dir.join("preprocessor_config.json"), settings).unwrap();
        let err = load_error(&dir);
        assert!(err.contains(needle), "{settings}: {err}");
    }

    let slow = tmp.path().join("bad_merges");
    copy_folder(&fixtures().join("sharded_bf16"), &slow, &[]);
    std::fs::write(
        slow.join("merges.txt"),
        "#version: 0.2\ni n\nthree parts here\n",
    )
    .unwrap();
    let err = load_error(&slow);
    assert!(
        err.contains("merges.txt") && err.contains("three parts here"),
        "{err}"
    );
}

#[test]
fn the_older_integer_size_keeps_the_aspect_ratio() {
    // The bug this fixture was made for: `"size": 16` is the shortest edge, so a 150 x 100
    // photo is resized to 24 x 16 and center-cropped, not squashed to 16 x 16.
    let (processor, path) = load_processor_config(&fixtures().join("single_f32"))
        .unwrap()
        .unwrap();
    assert!(path.ends_with("preprocessor_config.json"));
    let wide = load_image_with(photo("cat_wide_rgb.png"), processor.alpha_mode()).unwrap();
    let resized = processor.resize(&wide);
    assert_eq!((resized.width, resized.height), (24, 16));
}
