//! The service folds a growing index log into a snapshot in the background: additions past
//! half the log limit start it, searches and additions keep answering while it runs, and a
//! restart finds everything that was acknowledged.

use std::time::{Duration, Instant};

use mm_retrieval::DurableIndex;
use mm_retrieval::durable::{LOG_FILE, SNAPSHOT_FILE};
use mm_retrieval::snapshot::read_snapshot;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::common::*;

async fn add_white(c: &reqwest::Client, url: &str, side: u32) -> Value {
    let form = Form::new()
        .part(
            "image",
            Part::bytes(white_png(side, side)).file_name("white.png"),
        )
        .text("metadata", format!(r#"{{"side": {side}}}"#));
    let (status, body) = json_of(
        c.post(format!("{url}/index"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn metrics(c: &reqwest::Client, url: &str) -> Value {
    json_of(c.get(format!("{url}/metrics")).send().await.unwrap())
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_is_folded_into_a_snapshot_in_the_background() {
    let s = setup();
    let log = s.index.join(LOG_FILE);
    let mut index = DurableIndex::open::<B>(&s.index, &Default::default()).unwrap();
    assert_eq!(index.log_bytes(), 0);
    // One record of the size the service writes for these uploads; the limit is ten of them,
    // so the sixth record in the log (the fifth upload) starts a fold.
    let dim = index.index().dim();
    let meta = json!({"side": 19, "file_name": "white.png"});
    index.add(&vec![0.1; dim], vec![meta]).unwrap();
    let record = index.log_bytes();
    index.set_log_limit(10 * record);
    let server = start_with(&s, index, test_config()).await;
    let c = reqwest::Client::new();
    for side in 20..24 {
        add_white(&c, &server.url, side).await;
    }
    assert_eq!(
        metrics(&c, &server.url).await["index_log"]["compactions"],
        0
    );
    add_white(&c, &server.url, 24).await;
    let started = Instant::now();
    loop {
        let m = metrics(&c, &server.url).await;
        if m["index_log"]["compactions"] == 1 {
            assert_eq!(m["index_log"]["failed"], 0);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no compaction: {m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The snapshot holds all 22 entries and the log is empty.
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
    let snapshot = read_snapshot(&s.index.join(SNAPSHOT_FILE)).unwrap();
    assert_eq!(snapshot.metadata.len(), 22);
    let body = add_white(&c, &server.url, 25).await;
    assert_eq!(body["ids"], json!([22]));
    assert_eq!(std::fs::metadata(&log).unwrap().len(), record);
    let (status, found) = search_text(&c, &server.url, "a white square", 30).await;
    assert_eq!(
        (status, found["results"].as_array().unwrap().len()),
        (200, 23)
    );
    // A crash (no graceful save) and a restart: every acknowledged addition is back.
    server.task.abort();
    let _ = server.task.await;
    let index = DurableIndex::open::<B>(&s.index, &Default::default()).unwrap();
    assert_eq!(index.len(), 23);
    let sides: Vec<Value> = (16..23)
        .map(|id| index.metadata(id).unwrap()["side"].clone())
        .collect();
    assert_eq!(sides, (19..26).map(|s| json!(s)).collect::<Vec<_>>());
}
