//! The HTTP service over real HTTP on loopback: every endpoint, every class of bad request,
//! concurrent clients (batched), back-pressure, and a crash and restart that keep what was
//! indexed. The model is a tiny random CLIP; what is checked is the service, against the
//! library answering the same questions directly.

use std::time::Duration;

use mm_retrieval::DurableIndex;
use mm_serve::{BatchConfig, Limits, ServeConfig};
use reqwest::multipart::{Form, Part};
use serde_json::json;
use tokio::sync::oneshot;

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

/// A PNG of `w` x `h` white pixels (small on disk, large decoded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_json_4xx_naming_the_problem() {
    let s = setup();
    let server = start(&s, test_config()).await;
    let c = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url);
    let ok_png = || png(&s.data, "red-circle.png");
    let classify = |form: Form| c.post(url("/classify")).multipart(form);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no image",
            classify(Form::new().text("labels", "a,b")),
            400,
            "image_count",
        ),
        (
            "no labels",
            classify(image_form(ok_png())),
            400,
            "missing_field",
        ),
        (
            "corrupt image",
            classify(image_form(b"\x89PNG\r\n\x1a\nnot really".to_vec()).text("labels", "a,b")),
            422,
            "bad_image",
        ),
        (
            "empty image",
            classify(image_form(Vec::new()).text("labels", "a,b")),
            422,
            "bad_image",
        ),
        (
            "decompression bomb",
            classify(image_form(white_png(2000, 2000)).text("labels", "a,b")),
            413,
            "image_too_large",
        ),
        (
            "too many labels",
            classify(image_form(ok_png()).text("labels", "a,b,c,d,e,f,g,h,i")),
            413,
            "too_many_labels",
        ),
        (
            "empty label list",
            classify(image_form(ok_png()).text("labels", " , ")),
            422,
            "no_labels",
        ),
        (
            "an empty label",
            classify(image_form(ok_png()).text("labels", "a,,b")),
            422,
            "empty_label",
        ),
        (
            "duplicate label",
            classify(image_form(ok_png()).text("labels", "a,b,a")),
            422,
            "duplicate_label",
        ),
        (
            "template without {}",
            classify(
                image_form(ok_png())
                    .text("labels", "a")
                    .text("templates", "a photo"),
            ),
            422,
            "bad_template",
        ),
        (
            "unknown field",
            classify(
                image_form(ok_png())
                    .text("labels", "a")
                    .text("colour", "red"),
            ),
            400,
            "unknown_field",
        ),
        (
            "labels twice",
            classify(image_form(ok_png()).text("labels", "a").text("labels", "b")),
            400,
            "repeated_field",
        ),
        (
            "two images",
            classify(
                image_form(ok_png())
                    .part("image", Part::bytes(ok_png()))
                    .text("labels", "a"),
            ),
            400,
            "image_count",
        ),
        (
            "body over the limit",
            classify(image_form(vec![7u8; (2 << 20) + (64 << 10)]).text("labels", "a")),
            413,
            "body_too_large",
        ),
        (
            "not multipart",
            c.post(url("/classify")).body("labels=a"),
            400,
            "error",
        ),
        (
            "empty text",
            c.post(url("/search/text")).json(&json!({"text": "  "})),
            422,
            "empty_text",
        ),
        (
            "text over the byte limit",
            c.post(url("/search/text"))
                .json(&json!({"text": "x".repeat(201)})),
            413,
            "text_too_long",
        ),
        (
            "text over the context",
            c.post(url("/search/text")).json(
                &json!({"text": "one two three four five six seven eight nine ten eleven twelve"}),
            ),
            413,
            "text_too_long",
        ),
        (
            "k of zero",
            c.post(url("/search/text"))
                .json(&json!({"text": "a", "k": 0})),
            422,
            "bad_k",
        ),
        (
            "k too large",
            c.post(url("/search/text"))
                .json(&json!({"text": "a", "k": 100000})),
            422,
            "bad_k",
        ),
        (
            "malformed JSON",
            c.post(url("/search/text"))
                .header("content-type", "application/json")
                .body("{\"text\": "),
            400,
            "bad_json",
        ),
        (
            "unknown JSON field",
            c.post(url("/search/text"))
                .json(&json!({"text": "a", "colour": 1})),
            422,
            "bad_json",
        ),
        (
            "JSON without content type",
            c.post(url("/search/text")).body("{\"text\": \"a\"}"),
            415,
            "bad_json",
        ),
        (
            "k not a number",
            c.post(url("/search/image"))
                .multipart(image_form(ok_png()).text("k", "ten")),
            422,
            "bad_k",
        ),
        (
            "metadata not JSON",
            c.post(url("/index"))
                .multipart(image_form(ok_png()).text("metadata", "{oops")),
            400,
            "bad_metadata",
        ),
        (
            "metadata count",
            c.post(url("/index"))
                .multipart(image_form(ok_png()).text("metadata", "[{}, {}]")),
            422,
            "bad_metadata",
        ),
        (
            "index nothing",
            c.post(url("/index"))
                .multipart(Form::new().text("metadata", "{}")),
            422,
            "image_count",
        ),
        ("unknown route", c.get(url("/nope")), 404, "not_found"),
        (
            "wrong method",
            c.get(url("/classify")),
            405,
            "method_not_allowed",
        ),
    ];
    for (what, request, status, code) in cases {
        let (got, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
    // Nothing bad was indexed, and the service is still up.
    let (status, health) = json_of(c.get(url("/health")).send().await.unwrap()).await;
    assert_eq!((status, health["indexed"].as_u64()), (200, Some(16)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_share_forward_passes_and_a_full_queue_answers_429() {
    let s = setup();
    let server = start(&s, test_config()).await;
    let c = reqwest::Client::new();
    let texts = [
        "a red circle",
        "a blue bar",
        "a green square",
        "a yellow cross",
    ];
    let mut alone = Vec::new();
    for t in texts {
        alone.push(search_text(&c, &server.url, t, 3).await.1);
    }
    let requests = (0..48).map(|i| {
        let r = c
            .post(format!("{}/search/text", server.url))
            .json(&json!({"text": texts[i % 4], "k": 3}));
        async move { (i, json_of(r.send().await.unwrap()).await) }
    });
    for (i, (status, body)) in futures_join_all(requests).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            alone[i % 4],
            "a batched answer differs from the lone one"
        );
    }
    let (_, metrics) = json_of(
        c.get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let forwards = metrics["model"]["forward_passes"].as_u64().unwrap();
    assert!(
        forwards < 52,
        "52 texts took {forwards} forward passes: no batching"
    );
    server.stop().await;

    // A queue of one job and one item per pass: a burst must be shed with 429s.
    let config = ServeConfig {
        batch: BatchConfig {
            queue_capacity: 1,
            max_batch: 1,
        },
        ..test_config()
    };
    let server = start(&s, config).await;
    let burst = (0..64).map(|_| {
        let form = image_form(png(&s.data, "red-circle.png")).text("labels", "a,b,c,d,e,f,g,h");
        let r = c.post(format!("{}/classify", server.url)).multipart(form);
        async move { json_of(r.send().await.unwrap()).await }
    });
    let answers = futures_join_all(burst).await;
    let shed = answers.iter().filter(|(s, _)| *s == 429).count();
    assert!(shed > 0, "no request was refused");
    for (status, body) in &answers {
        assert!(
            *status == 200 || (*status == 429 && body["error"]["code"] == "queue_full"),
            "{status} {body}"
        );
    }
    assert!(answers.iter().any(|(s, _)| *s == 200));
    server.stop().await;

    // A request that waits for the model longer than the timeout gets a 503, not a hang.
    let config = ServeConfig {
        limits: Limits {
            request_timeout: Duration::ZERO,
            ..test_config().limits
        },
        ..test_config()
    };
    let config = ServeConfig {
        batch: BatchConfig {
            queue_capacity: 4,
            max_batch: 1,
        },
        ..config
    };
    let server = start(&s, config).await;
    // 8 labels x 32 templates: 256 forward passes, which no first poll sees finished.
    let templates: Vec<String> = (0..32).map(|i| format!("{{}} {i}")).collect();
    let form = image_form(png(&s.data, "red-circle.png"))
        .text("labels", "a,b,c,d,e,f,g,h")
        .text("templates", templates.join("\n"));
    let r = c.post(format!("{}/classify", server.url)).multipart(form);
    let (status, body) = json_of(r.send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("timeout"))
    );
    server.stop().await;
}

/// Runs futures concurrently on the runtime and returns their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_while_an_addition_holds_the_index() {
    let s = setup();
    let index = DurableIndex::open::<B>(&s.index, &Default::default()).unwrap();
    let (router, index) = mm_serve::router(load(&s.model), index, None, &test_config()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // A writer (an addition, or the snapshot a long log triggers) holds the index.
    let (locked, is_locked) = oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let _held = index.write().unwrap();
        locked.send(()).unwrap();
        released.recv().unwrap();
    });
    is_locked.await.unwrap();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for path in ["health", "metrics"] {
        let reply = c.get(format!("{url}/{path}")).send().await;
        let (status, body) = json_of(reply.expect("an answer while the index is held")).await;
        assert_eq!(
            (status, body["indexed"].as_u64()),
            (200, Some(16)),
            "{path}"
        );
    }
    release.send(()).unwrap();
    writer.join().unwrap();
    server.abort();
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
