//! Zero-shot transfer evaluation against transformers: a tiny random HF CLIP, four photos with
//! object labels and categories, four templates. The ensemble's top-3 probabilities and every
//! accuracy (one prompt, ensemble, each template alone, the ensemble without each) match the
//! reference of `tests/fixtures/zero_shot/generate.py`; and the prompt ensemble on hand-made
//! embeddings.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use mm_vl::hf::load_hf_clip;
use mm_vl::transfer::TransferItem;
use mm_vl::transfer_eval::{TaskReport, evaluate_transfer};
use mm_vl::zeroshot::{class_probabilities, ensemble};
use serde_json::Value;

type B = NdArray;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn assert_task(what: &str, got: &TaskReport, want: &Value) {
    assert_eq!(
        got.n_classes,
        want["classes"].as_array().unwrap().len(),
        "{what}"
    );
    for (name, value) in [
        ("top1_single", got.top1_single),
        ("top1_ensemble", got.top1_ensemble),
        ("top5_single", got.top5_single),
        ("top5_ensemble", got.top5_ensemble),
    ] {
        assert_eq!(value, f(&want[name]), "{what} {name}");
    }
    for (t, figures) in got.templates.iter().enumerate() {
        assert_eq!(
            figures.top1_alone,
            f(&want["top1_alone"][t]),
            "{what} template {t} alone"
        );
        assert_eq!(
            figures.top1_without,
            f(&want["top1_without"][t]),
            "{what} without {t}"
        );
    }
}

#[test]
fn ensembles_and_ablation_match_transformers() {
    let want = crate::common::read_json(&fixtures().join("zero_shot/expected.json"));
    let clip =
        load_hf_clip::<B>(&fixtures().join("hf_clip/quick_gelu"), &Default::default()).unwrap();
    let items: Vec<TransferItem> = want["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| TransferItem {
            image: fixtures().join("hf_clip").join(item[0].as_str().unwrap()),
            caption: format!("A {}.", item[1].as_str().unwrap()),
            label: item[1].as_str().unwrap().into(),
            category: Some(item[2].as_str().unwrap().into()),
        })
        .collect();
    let templates: Vec<String> = want["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().into())
        .collect();
    let report = evaluate_transfer(&clip, &items, &templates, 3).unwrap();
    assert_task("objects", &report.objects, &want["objects"]);
    assert_task(
        "categories",
        report.categories.as_ref().unwrap(),
        &want["categories"],
    );
    assert_eq!(report.objects.majority_top1, 0.25);
    assert_eq!(report.categories.as_ref().unwrap().majority_class, "object");
    assert_eq!(report.categories.as_ref().unwrap().majority_top1, 0.5);
    for (got, want) in report
        .predictions
        .iter()
        .zip(want["top3"].as_array().unwrap())
    {
        let names: Vec<&str> = got.top3.iter().map(|(c, _)| c.as_str()).collect();
        let want_names: Vec<&str> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap())
            .collect();
        assert_eq!(names, want_names, "{}", got.image.display());
        let probs: Vec<f32> = got.top3.iter().map(|(_, p)| *p).collect();
        let want_probs: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| crate::common::floats(&p[1]))
            .collect();
        // Softmax at scale 100 multiplies a 1e-5 cosine difference by about 1e-3.
        crate::common::assert_close("top-3 probabilities", &probs, &want_probs, 2e-3);
    }
}

#[test]
fn bad_templates_and_empty_sets_are_named() {
    let clip =
        load_hf_clip::<B>(&fixtures().join("hf_clip/quick_gelu"), &Default::default()).unwrap();
    let item = TransferItem {
        image: fixtures().join("hf_clip/cat_wide_rgb.png"),
        caption: "A cat.".into(),
        label: "cat".into(),
        category: None,
    };
    let err = evaluate_transfer(&clip, &[], &["a {}.".into()], 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no test items"), "{err}");
    let err = evaluate_transfer(&clip, std::slice::from_ref(&item), &["a photo".into()], 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`{}`"), "{err}");
    let missing = TransferItem {
        image: fixtures().join("nope.png"),
        ..item
    };
    let err = evaluate_transfer(&clip, &[missing], &["a {}.".into()], 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.png"), "{err}");
}

#[test]
fn ensemble_averages_and_renormalizes() {
    let device = Default::default();
    // Class 0: prompts e0 and e1 -> (e0 + e1)/sqrt(2). Class 1: e2 twice -> e2.
    let data = vec![
        1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0,
    ];
    let prompts = Tensor::<NdArray, 3>::from_data(TensorData::new(data, [2, 2, 3]), &device);
    let out = ensemble(prompts).into_data().to_vec::<f32>().unwrap();
    let h = std::f32::consts::FRAC_1_SQRT_2;
    let want = [h, h, 0.0, 0.0, 0.0, 1.0];
    for (a, b) in out.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{out:?}");
    }
}

#[test]
fn ensemble_can_change_the_decision() {
    // An image at (0.8, 0.6, 0): with template 1 alone it sits closer to class 1 (0, 1, 0)
    // than to class 0 (0.6, 0, 0.8); ensembling class 0's templates (1, 0, 0) and
    // (0.6, 0, 0.8) moves class 0 towards the image, and the answer flips to class 0.
    let device = Default::default();
    let image =
        Tensor::<NdArray, 2>::from_data(TensorData::new(vec![0.8f32, 0.6, 0.0], [1, 3]), &device);
    let single = Tensor::<NdArray, 2>::from_data(
        TensorData::new(vec![0.6f32, 0.0, 0.8, 0.0, 1.0, 0.0], [2, 3]),
        &device,
    );
    let p = class_probabilities(image.clone(), single, 100.0)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(p[1] > p[0], "{p:?}");
    let prompts = Tensor::<NdArray, 3>::from_data(
        TensorData::new(
            vec![
                1.0f32, 0.0, 0.0, 0.6, 0.0, 0.8, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
            ],
            [2, 2, 3],
        ),
        &device,
    );
    let p = class_probabilities(image, ensemble(prompts), 100.0)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(p[0] > p[1], "{p:?}");
    assert!((p[0] + p[1] - 1.0).abs() < 1e-5);
}
