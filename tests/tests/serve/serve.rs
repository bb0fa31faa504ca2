//! The HTTP service over real HTTP on loopback: every endpoint, and a crash and restart that
//! keep what was indexed (bad requests in `bad_requests.rs`, concurrent clients and
//! back-pressure in `concurrency.rs`). The model is a tiny random CLIP; what is checked is the
//! service, against the library answering the same questions directly.

use std::time::Duration;

use mm_retrieval::DurableIndex;
use reqwest::multipart::{Form, Part};
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_like_the_library() {
    let s = setup();
    let server = start(&s, test_config()).await;
    let c = reqwest::Client::new();
    let lib = load(&s.model);
    let direct = DurableIndex::open::<B>(&s.index, &Default::default()).unwrap();

    let (status, health) = json_of(
        c.get(format!("{}/health", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, health["indexed"].as_u64()), (200, Some(16)));

    // Text -> images: the ids and scores the library gives.
    let (status, body) = search_text(&c, &server.url, "a red circle", 5).await;
    assert_eq!(status, 200, "{body}");
    let q = lib
        .embed_texts(&["a red circle".to_string()], 1, true)
        .unwrap();
    let want = direct.search_batch(&q[0], 5).unwrap().remove(0);
    let got = body["results"].as_array().unwrap();
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["id"].as_u64(), Some(w.id));
        assert!((g["score"].as_f64().unwrap() - w.score as f64).abs() < 1e-5);
        assert_eq!(g["metadata"], w.metadata);
    }

    // Image -> images: an indexed image finds itself first.
    let form = image_form(png(&s.data, "green-bar.png")).text("k", "3");
    let (status, body) = json_of(
        c.post(format!("{}/search/image", server.url))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["metadata"]["path"], "green-bar.png");
    assert!((body["results"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);

    // Classify, with a prompt ensemble: the library's probabilities.
    let templates = "a {} shape.\na drawing of a {}.";
    let form = image_form(png(&s.data, "blue-cross.png"))
        .text("labels", "square, circle,bar,cross")
        .text("templates", templates);
    let (status, body) = json_of(
        c.post(format!("{}/classify", server.url))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let labels: Vec<String> = ["square", "circle", "bar", "cross"]
        .map(String::from)
        .to_vec();
    let want = lib
        .classify(
            &s.data.join("blue-cross.png"),
            &labels,
            &["a {} shape.", "a drawing of a {}."],
        )
        .unwrap();
    let got = body["labels"].as_array().unwrap();
    let total: f64 = got.iter().map(|l| l["probability"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);
    for (g, (label, p)) in got.iter().zip(&want) {
        assert_eq!(g["label"].as_str(), Some(label.as_str()));
        assert!(
            (g["probability"].as_f64().unwrap() - *p as f64).abs() < 1e-4,
            "{g} vs {p}"
        );
    }

    // Index two new images with metadata; each then finds itself.
    let new = image::RgbImage::from_fn(40, 24, |x, _| image::Rgb([(x * 6) as u8, 90, 200]));
    let mut bytes = Vec::new();
    new.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    let form = Form::new()
        .part(
            "image",
            Part::bytes(bytes.clone()).file_name("gradient.png"),
        )
        .part(
            "image",
            Part::bytes(png(&s.data, "red-square.png")).file_name("again.png"),
        )
        .text(
            "metadata",
            r#"[{"caption": "a gradient"}, {"caption": "a copy"}]"#,
        );
    let (status, body) = json_of(
        c.post(format!("{}/index", server.url))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["ids"].clone()),
        (200, json!([16, 17])),
        "{body}"
    );
    let (_, body) = json_of(
        c.post(format!("{}/search/image", server.url))
            .multipart(image_form(bytes))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["results"][0]["id"], 16);
    assert_eq!(
        body["results"][0]["metadata"],
        json!({"caption": "a gradient", "file_name": "gradient.png"})
    );

    let (_, metrics) = json_of(
        c.get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(metrics["routes"]["POST /search/image"]["count"], 2);
    assert_eq!(metrics["routes"]["POST /classify"]["by_status"]["200"], 1);
    assert!(
        metrics["routes"]["POST /classify"]["p99_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(metrics["indexed"], 18);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_restart_keep_what_was_indexed() {
    let s = setup();
    let server = start(&s, test_config()).await;
    let c = reqwest::Client::new();
    let form = Form::new()
        .part(
            "image",
            Part::bytes(white_png(30, 30)).file_name("white.png"),
        )
        .text("metadata", r#"{"note": "added before the crash"}"#);
    let (status, body) = json_of(
        c.post(format!("{}/index", server.url))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["ids"].clone()), (200, json!([16])));
    // A crash: the server task dies without its graceful shutdown (no snapshot is written).
    server.task.abort();
    let _ = server.task.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = start(&s, test_config()).await;
    let (_, health) = json_of(
        c.get(format!("{}/health", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(health["indexed"], 17);
    let (_, body) = json_of(
        c.post(format!("{}/search/image", server.url))
            .multipart(image_form(white_png(30, 30)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["results"][0]["id"], 16);
    assert_eq!(
        body["results"][0]["metadata"]["note"],
        "added before the crash"
    );
    // A graceful stop folds the log into the snapshot; a third start still has everything.
    server.stop().await;
    let log = std::fs::metadata(s.index.join(mm_retrieval::durable::LOG_FILE))
        .unwrap()
        .len();
    assert_eq!(log, 0);
    assert_eq!(
        DurableIndex::open::<B>(&s.index, &Default::default())
            .unwrap()
            .len(),
        17
    );
}
