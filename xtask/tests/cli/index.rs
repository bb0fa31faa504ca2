//! `cargo xtask index build` and `cargo xtask search` end to end: a folder with a corrupt file
//! (skipped by name), the model recorded in the index folder, text and image queries, an
//! existing index refused, and both index kinds.

use std::path::Path;

use serde_json::Value;

use crate::common::{ok, tiny_clip_folder, xtask};

/// Five 24 px images of different colours, and a file that only looks like a PNG.
fn images(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, rgb) in [
        [220, 30, 30],
        [30, 180, 60],
        [40, 60, 220],
        [230, 210, 40],
        [20, 20, 20],
    ]
    .into_iter()
    .enumerate()
    {
        let img = image::RgbImage::from_fn(24, 24, |x, y| {
            if (x as i32 - 12).abs() + (y as i32 - 12).abs() < 4 + 2 * i as i32 {
                image::Rgb(rgb)
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        img.save(dir.join(format!("img{i}.png"))).unwrap();
    }
    std::fs::write(dir.join("broken.png"), b"\x89PNG\r\n\x1a\nnothing").unwrap();
}

#[test]
fn build_then_search_by_text_and_image() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    tiny_clip_folder(&model);
    let data = tmp.path().join("images");
    images(&data);
    for kind in ["exact", "hnsw"] {
        let index = tmp.path().join(format!("index-{kind}"));
        let (m, i, d) = (
            model.to_str().unwrap(),
            data.to_str().unwrap(),
            index.to_str().unwrap(),
        );
        let out = xtask(&[
            "index", "build", "--model", m, "--images", i, "--out", d, "--kind", kind,
        ]);
        let stdout = ok(&out);
        assert!(
            stdout.contains("indexed 5 images") && stdout.contains("1 skipped"),
            "{stdout}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("broken.png"));
        // The model is found through the index folder's model.json.
        let found: Value = serde_json::from_str(&ok(&xtask(&[
            "search",
            "--index",
            d,
            "--text",
            "a red square",
            "--k",
            "3",
            "--json",
        ])))
        .unwrap();
        let found = found.as_array().unwrap();
        assert_eq!(found.len(), 3);
        assert!(found[0]["score"].as_f64() >= found[2]["score"].as_f64());
        // An indexed image finds itself first.
        let query = data.join("img2.png");
        let found: Value = serde_json::from_str(&ok(&xtask(&[
            "search",
            "--index",
            d,
            "--image",
            query.to_str().unwrap(),
            "--json",
        ])))
        .unwrap();
        assert_eq!(found[0]["metadata"]["path"], "img2.png", "{kind}: {found}");
        assert!((found[0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
        assert_eq!(found.as_array().unwrap().len(), 5);
        // Building over an existing index is refused, and the index is untouched.
        let again = xtask(&["index", "build", "--model", m, "--images", i, "--out", d]);
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already holds an index"));
    }
    let missing = xtask(&[
        "search",
        "--index",
        tmp.path().join("nope").to_str().unwrap(),
        "--text",
        "a",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("model.json"));
}
