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

#[test]
fn a_stopped_build_resumes_with_what_it_lacks_and_refuses_another_model() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    tiny_clip_folder(&model);
    let data = tmp.path().join("images");
    images(&data);
    let index = tmp.path().join("index");
    let (m, i, d) = (
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        index.to_str().unwrap(),
    );
    let build = |extra: &[&str]| {
        let mut a = vec![
            "index", "build", "--model", m, "--images", i, "--out", d, "--batch", "2",
        ];
        a.extend_from_slice(extra);
        xtask(&a)
    };
    let whole = build(&[]);
    ok(&whole);
    // Each batch is reported once it is durable (stderr is a pipe here, not a terminal).
    let stderr = String::from_utf8_lossy(&whole.stderr);
    // The first batch holds broken.png (skipped) and img0.png.
    assert!(stderr.contains("indexed 1, read 2 of 6 images"), "{stderr}");
    assert!(stderr.contains("indexed 5, read 6 of 6 images"), "{stderr}");
    let search = || -> Value {
        serde_json::from_str(&ok(&xtask(&[
            "search", "--index", d, "--text", "a red", "--k", "100", "--json",
        ])))
        .unwrap()
    };
    let before = search();

    // A resumed build of a complete folder adds nothing.
    let stdout = ok(&build(&["--resume"]));
    assert!(stdout.contains("indexed 5 images"), "{stdout}");
    assert_eq!(search(), before);

    // A build stopped after 3 images: it holds them, and --resume adds the other 2.
    let partial = tmp.path().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    for name in ["img0.png", "img1.png", "img2.png"] {
        std::fs::copy(data.join(name), partial.join(name)).unwrap();
    }
    let p = partial.to_str().unwrap();
    let stopped = tmp.path().join("stopped");
    let s = stopped.to_str().unwrap();
    ok(&xtask(&[
        "index", "build", "--model", m, "--images", p, "--out", s,
    ]));
    ok(&xtask(&[
        "index", "build", "--model", m, "--images", i, "--out", s, "--resume",
    ]));
    let resumed: Value = serde_json::from_str(&ok(&xtask(&[
        "search", "--index", s, "--text", "a red", "--k", "100", "--json",
    ])))
    .unwrap();
    assert_eq!(resumed.as_array().unwrap().len(), 5, "{resumed}");
    for (a, b) in resumed
        .as_array()
        .unwrap()
        .iter()
        .zip(before.as_array().unwrap())
    {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["metadata"], b["metadata"]);
        assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-5);
    }

    // Another model, or images the folder was not built from, are refused by name.
    let other = tmp.path().join("other-model");
    tiny_clip_folder(&other);
    let refused = xtask(&[
        "index",
        "build",
        "--model",
        other.to_str().unwrap(),
        "--images",
        i,
        "--out",
        s,
        "--resume",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("resume with the same --model"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let only_last = tmp.path().join("only-last");
    std::fs::create_dir_all(&only_last).unwrap();
    std::fs::copy(data.join("img4.png"), only_last.join("img4.png")).unwrap();
    let refused = xtask(&[
        "index",
        "build",
        "--model",
        m,
        "--images",
        only_last.to_str().unwrap(),
        "--out",
        s,
        "--resume",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("built from other images"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
