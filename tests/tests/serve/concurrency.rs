//! The HTTP service under concurrent clients: forward passes shared between requests,
//! back-pressure (a full queue answers 429), and health and metrics answering while an
//! addition holds the index.

use std::time::Duration;

use mm_retrieval::DurableIndex;
use mm_serve::{BatchConfig, Limits, ServeConfig};
use serde_json::json;
use tokio::sync::oneshot;

use crate::common::*;

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
