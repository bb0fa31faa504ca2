//! `cargo xtask eval zero-shot` end to end on a tiny model: labels taken from stamp-style
//! captions that occur in the training captions, categories from folders, the template
//! ablation in the JSON, the same figures from the model exported as an HF CLIP folder, and
//! named errors for a bad template file and a missing manifest.

use std::path::Path;

use serde_json::Value;

use crate::common::{ok, tiny_clip_folder, xtask};

/// Stamp-like images (opaque, so HF folders, which drop alpha, see what ours see) in two folders and their manifest; a training manifest whose
/// captions hold some of the objects' names.
fn data(dir: &Path) {
    let stamps = [
        ("animals/frog.png", "A frog.", [40, 160, 40]),
        ("animals/lion.png", "A lion with a mane.", [200, 150, 40]),
        ("animals/frog-2.png", "A green frog!", [30, 120, 30]),
        ("food/apple.png", "A ripe, red apple.", [220, 30, 30]),
        ("food/xanthia.png", "A xanthia.", [90, 30, 90]),
    ];
    let mut lines = String::new();
    for (path, caption, rgb) in stamps {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        image::RgbImage::from_fn(20, 20, |x, y| {
            if (x as i32 - 10).abs() + (y as i32 - 10).abs() < 7 {
                image::Rgb(rgb)
            } else {
                image::Rgb([255, 255, 255])
            }
        })
        .save(&file)
        .unwrap();
        let folder = path.split('/').next().unwrap();
        lines.push_str(&format!(
            "{{\"image\": \"{path}\", \"captions\": [\"{caption}\"], \"label\": \"{folder}\"}}\n"
        ));
    }
    std::fs::write(dir.join("stamps.jsonl"), lines).unwrap();
    std::fs::write(
        dir.join("train.jsonl"),
        "{\"image\": \"animals/frog.png\", \"captions\": [\"frog face\", \"animal\"]}\n\
         {\"image\": \"food/apple.png\", \"captions\": [\"red apple\", \"lion\", \"food\"]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("templates.txt"),
        "a photo of a {}.\n\n{}\na drawing of a {}.\n",
    )
    .unwrap();
}

#[test]
fn stamps_are_scored_from_our_folder_and_its_hf_export() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    tiny_clip_folder(&model);
    data(tmp.path());
    let hf = tmp.path().join("hf");
    ok(&xtask(&[
        "export",
        "clip",
        "--checkpoint",
        model.to_str().unwrap(),
        "--out",
        hf.to_str().unwrap(),
    ]));
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let mut reports = Vec::new();
    for folder in [model.to_str().unwrap(), hf.to_str().unwrap()] {
        let out = p("report.json");
        let stdout = ok(&xtask(&[
            "eval",
            "zero-shot",
            "--checkpoint",
            folder,
            "--data",
            &p("stamps.jsonl"),
            "--train-data",
            &p("train.jsonl"),
            "--templates",
            &p("templates.txt"),
            "--out",
            &out,
            "--page",
            &p("page.md"),
        ]));
        assert!(
            stdout.contains("objects: 3 classes, 4 test images"),
            "{stdout}"
        );
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(json["n_test"], 4);
        assert_eq!(json["n_classes"], 3);
        for key in ["top1_single", "top1_ensemble", "top5_ensemble"] {
            let v = json[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} {v}");
        }
        // Three classes: every label is within the top 5.
        assert_eq!(json["top5_ensemble"], 1.0);
        assert_eq!(json["majority_class"], "frog");
        assert_eq!(json["majority_top1"], 0.5);
        assert_eq!(json["templates"].as_array().unwrap().len(), 3);
        assert_eq!(json["categories"]["n_classes"], 2);
        assert_eq!(json["untrained"]["objects"]["n_test"], 4);
        let predictions = json["predictions"].as_array().unwrap();
        assert_eq!(predictions[1]["label"], "lion");
        assert_eq!(predictions[1]["top3"].as_array().unwrap().len(), 3);
        let page = std::fs::read_to_string(p("page.md")).unwrap();
        assert!(
            page.contains("](animals/lion.png)") && page.contains("A ripe, red apple."),
            "{page}"
        );
        reports.push(json);
    }
    // The HF export gives the same figures and the same top-3 (probabilities within 1e-3:
    // softmax at scale 100 magnifies float noise).
    for key in [
        "top1_single",
        "top1_ensemble",
        "top5_ensemble",
        "majority_top1",
    ] {
        assert_eq!(reports[0][key], reports[1][key], "{key}");
    }
    for (a, b) in reports[0]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reports[1]["predictions"].as_array().unwrap())
    {
        for (x, y) in a["top3"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["top3"].as_array().unwrap())
        {
            assert_eq!(x[0], y[0]);
            assert!(
                (x[1].as_f64().unwrap() - y[1].as_f64().unwrap()).abs() < 1e-3,
                "{x} {y}"
            );
        }
    }
}

#[test]
fn bad_templates_and_missing_data_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    data(tmp.path());
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("bad.txt"), "a photo of a thing\n").unwrap();
    let out = xtask(&[
        "eval",
        "zero-shot",
        "--checkpoint",
        &p("nowhere"),
        "--data",
        &p("stamps.jsonl"),
        "--train-data",
        &p("train.jsonl"),
        "--templates",
        &p("bad.txt"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("bad.txt") && err.contains("{}"),
        "{err}"
    );
    let out = xtask(&[
        "eval",
        "zero-shot",
        "--data",
        &p("missing.jsonl"),
        "--train-data",
        &p("train.jsonl"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("missing.jsonl"),
        "{err}"
    );
    let out = xtask(&[
        "eval",
        "zero-shot",
        "--data",
        &p("stamps.jsonl"),
        "--train-data",
        &p("train.jsonl:test"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("has no records"),
        "{err}"
    );
}
