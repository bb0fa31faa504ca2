//! `cargo xtask train caption` on sources of one's own: the xtask's recipe (label smoothing
//! 0.3; the stamps weight only on the default sources) reaches the saved settings, greedy and
//! both beam widths (plain and reranked by minimum Bayes risk) are reported on the test source, and
//! settings that cannot apply are named errors before anything is written. `caption
//! --mbr` returns the same finished captions as beam search, in MBR order.

use std::path::Path;

use serde_json::Value;

use crate::common::{ok, xtask};

/// Two shades of four colours for training, one of each for testing, captioned by colour.
fn write_colours(dir: &Path) -> String {
    let colours = [
        ("red", [220, 30, 30]),
        ("green", [30, 200, 40]),
        ("blue", [30, 40, 220]),
        ("yellow", [230, 220, 30]),
    ];
    let mut lines = Vec::new();
    for (shade, split) in [(0u8, "train"), (1, "train"), (2, "test")] {
        for (name, rgb) in colours {
            let file = format!("{name}{shade}.png");
            image::RgbImage::from_pixel(16, 16, image::Rgb(rgb.map(|c| c - 15 * shade)))
                .save(dir.join(&file))
                .unwrap();
            lines.push(format!(
                r#"{{"image":"{file}","captions":["A {name} square."],"split":"{split}"}}"#
            ));
        }
    }
    let manifest = dir.join("colours.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    manifest.display().to_string()
}

#[test]
fn own_sources_train_with_the_recipe_and_impossible_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_colours(dir.path());
    let run_dir = dir.path().join("run");
    let report = dir.path().join("report.json");
    let train = format!("colours={manifest}:train");
    let test = format!("colours={manifest}:test");
    let base = [
        "train",
        "caption",
        "--source",
        &train,
        "--test-source",
        &test,
        "--run-dir",
        run_dir.to_str().unwrap(),
    ];
    for (setting, needle) in [
        // The stamps weight belongs to the default sources' recipe, not to these.
        (
            "source_weights.stamps=1",
            "`source_weights.stamps` is not a field",
        ),
        ("ema_decay=1.5", "ema_decay must be in [0, 1)"),
    ] {
        let out = xtask(&[&base[..], &["--set", setting]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{err}");
    }
    assert!(!run_dir.exists(), "a refused run writes nothing");

    let out = xtask(
        &[
            &base[..],
            &[
                "--steps",
                "20",
                "--set",
                "batch=8",
                "--set",
                "validation_fraction=0.25",
                "--out",
                report.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    ok(&out);
    let read =
        |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let settings = read(&run_dir.join("final/mm_train_config.json"));
    assert_eq!(settings["label_smoothing"], 0.3);
    assert_eq!(settings["source_weights"], serde_json::json!({}));
    assert_eq!(settings["steps"], 20);
    let report = read(&report);
    for decoding in ["greedy", "beam3", "beam5", "beam3_mbr", "beam5_mbr"] {
        let all = &report[decoding];
        assert_eq!(all["n"], 4, "{report}");
        assert!(all["cider"].as_f64().unwrap() >= 0.0, "{report}");
        assert!(all["sets"]["colours"]["bleu4"].is_number(), "{report}");
    }

    // `caption --mbr`: the same three finished captions, reordered; refused without beams.
    let image = dir.path().join("red2.png");
    let model = run_dir.join("final");
    let caption = |extra: &[&str]| {
        let base = [
            "caption",
            "--model",
            model.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--json",
        ];
        xtask(&[&base[..], extra].concat())
    };
    let texts = |out: &std::process::Output| -> Vec<String> {
        ok(out);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["captions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut plain = texts(&caption(&["--beams", "3", "--num-return", "3"]));
    let mut reranked = texts(&caption(&["--beams", "3", "--num-return", "3", "--mbr"]));
    assert_eq!(reranked.len(), 3);
    plain.sort();
    reranked.sort();
    assert_eq!(plain, reranked);
    for bad in [
        &["--mbr"][..],
        &["--mbr", "--beams", "3", "--num-return", "0"],
        &["--mbr", "--beams", "3", "--num-return", "4"],
    ] {
        let out = caption(bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--mbr reranks"),
            "{bad:?}: {err}"
        );
    }
}
