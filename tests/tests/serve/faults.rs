//! The service under faults on the wire: an upload that dribbles in does not hold up other
//! clients and still lands whole; an upload dropped midway adds nothing and breaks nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{json_of, setup, start, test_config, white_png};

/// A `POST /index` request with one image, as raw bytes: the head and the body.
fn index_request(host: &str, note: &str) -> (Vec<u8>, Vec<u8>) {
    let mut body = Vec::new();
    body.extend(
        b"--fault\r\nContent-Disposition: form-data; name=\"image\"; filename=\"w.png\"\r\n",
    );
    body.extend(b"Content-Type: image/png\r\n\r\n");
    body.extend(white_png(30, 30));
    body.extend(b"\r\n--fault\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n");
    body.extend(format!("{{\"note\": \"{note}\"}}").as_bytes());
    body.extend(b"\r\n--fault--\r\n");
    let head = format!(
        "POST /index HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=fault\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    (head.into_bytes(), body)
}

/// Sends `head` and the first `sent` bytes of `body` on a fresh connection, then reads the
/// whole answer (off the async runtime: plain blocking sockets).
async fn send_raw(host: &str, head: Vec<u8>, body: Vec<u8>, sent: usize) -> String {
    let host = host.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&host).unwrap();
        stream.write_all(&head).unwrap();
        stream.write_all(&body[..sent]).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

async fn indexed(c: &reqwest::Client, url: &str) -> u64 {
    let (_, health) = json_of(c.get(format!("{url}/health")).send().await.unwrap()).await;
    health["indexed"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_holds_up_no_one_and_lands_whole() {
    let s = setup();
    let server = start(&s, test_config()).await;
    let host = server.url.trim_start_matches("http://").to_string();
    let c = reqwest::Client::new();
    let (head, body) = index_request(&host, "slow");
    let mut slow = TcpStream::connect(&host).unwrap();
    slow.write_all(&head).unwrap();
    // The body arrives in 20 pieces over about 2 s.
    let pieces: Vec<Vec<u8>> = body
        .chunks(body.len().div_ceil(20))
        .map(<[u8]>::to_vec)
        .collect();
    let dribble = tokio::task::spawn_blocking(move || {
        for piece in pieces {
            slow.write_all(&piece).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut answer = String::new();
        slow.read_to_string(&mut answer).unwrap();
        answer
    });
    // Meanwhile other clients are answered at once.
    for _ in 0..5 {
        let began = Instant::now();
        let (status, body) = json_of(
            c.post(format!("{}/search/text", server.url))
                .json(&serde_json::json!({"text": "a red circle", "k": 3}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            began.elapsed() < Duration::from_millis(1500),
            "{:?}",
            began.elapsed()
        );
        assert!(
            !dribble.is_finished(),
            "the slow upload finished too soon to test anything"
        );
    }
    let answer = dribble.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["ids"], serde_json::json!([16]));
    assert_eq!(indexed(&c, &server.url).await, 17);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_dropped_midway_adds_nothing() {
    let s = setup();
    let server = start(&s, test_config()).await;
    let host = server.url.trim_start_matches("http://").to_string();
    let c = reqwest::Client::new();
    for cut in [0.1, 0.5, 0.95] {
        let (head, body) = index_request(&host, "dropped");
        let mut stream = TcpStream::connect(&host).unwrap();
        stream.write_all(&head).unwrap();
        stream
            .write_all(&body[..(body.len() as f64 * cut) as usize])
            .unwrap();
        drop(stream); // the client goes away mid-upload
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(indexed(&c, &server.url).await, 16);
    // The service goes on: a whole upload lands, with the next id.
    let (head, body) = index_request(&host, "whole");
    let whole = body.len();
    let answer = send_raw(&host, head, body, whole).await;
    assert!(answer.contains("\"ids\":[16]"), "{answer}");
    server.stop().await;
    // Reopened, the folder holds the 16 images and the one whole upload.
    let index = mm_retrieval::DurableIndex::open::<crate::common::B>(&s.index, &Default::default())
        .unwrap();
    assert_eq!(index.len(), 17);
    assert_eq!(index.metadata(16).unwrap()["note"], "whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_body_timeout_gets_a_408_and_adds_nothing() {
    let s = setup();
    let mut config = test_config();
    config.limits.body_timeout = Duration::from_millis(400);
    let server = start(&s, config).await;
    let host = server.url.trim_start_matches("http://").to_string();
    let c = reqwest::Client::new();
    let (head, body) = index_request(&host, "too slow");
    // Half the body, then nothing for longer than the timeout.
    let half = body.len() / 2;
    let answer = send_raw(&host, head, body, half).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "body_timeout", "{json}");
    assert_eq!(indexed(&c, &server.url).await, 16);
    server.stop().await;
}
