//! `POST /vqa` end to end: a service started with a ViLT question-answering folder (the tiny
//! transformers fixture, with a vocabulary written beside it) answers with the probabilities
//! the model gives directly, batches concurrent questions, and answers every bad request with
//! a JSON 4xx; a service started without a VQA model says so.

use std::path::Path;

use crate::common::{B, Setup, json_of, setup, start_full, test_config};
use mm_retrieval::DurableIndex;
use mm_vl::vqa::AnyVqa;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// The tiny ViLT fixture (vocabulary of 64) with a `vocab.txt` of its size.
fn vilt_folder(dir: &Path) {
    let fixture = mm_data::package_dir!().join("../crates/mm-vl/tests/fixtures/hf_vilt/vqa");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for w in [
        "what", "color", "is", "the", "shape", "?", "there", "a", "red", "circle",
    ] {
        vocab.push(w.into());
    }
    while vocab.len() < 64 {
        vocab.push(format!("word{}", vocab.len()));
    }
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
}

fn image_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

fn form(question: &str) -> Form {
    Form::new()
        .part("image", Part::bytes(image_png()).file_name("q.png"))
        .text("question", question.to_string())
}

async fn serve_with_vqa(s: &Setup, vqa_dir: &Path) -> crate::common::Server {
    let index = DurableIndex::open::<B>(&s.index, &Default::default()).unwrap();
    let vqa = mm_serve::VqaModel {
        model: AnyVqa::<B>::load(vqa_dir, &Default::default()).unwrap(),
        device: Default::default(),
    };
    start_full(s, index, Some(vqa), test_config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vqa_answers_as_the_model_does_and_names_bad_requests() {
    let s = setup();
    let vqa_dir = s._tmp.path().join("vilt");
    vilt_folder(&vqa_dir);
    let server = serve_with_vqa(&s, &vqa_dir).await;
    let c = reqwest::Client::new();
    let url = format!("{}/vqa", server.url);

    // The answers and probabilities of the model itself.
    let direct = AnyVqa::<B>::load(&vqa_dir, &Default::default()).unwrap();
    let image = mm_vision::decode::decode_image(&image_png(), "q.png").unwrap();
    let want = direct
        .ask(&image, "what color is the shape?", 5, &Default::default())
        .unwrap();
    let (status, body) = json_of(
        c.post(&url)
            .multipart(form("what color is the shape?"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "vilt");
    let got = body["answers"].as_array().unwrap();
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["answer"], w.answer.as_str());
        assert!((g["probability"].as_f64().unwrap() - w.probability).abs() < 1e-5);
    }
    let total: f64 = got.iter().map(|a| a["probability"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "all 5 answers: {total}");

    // Concurrent questions share forward passes.
    let asks = (0..12).map(|_| {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            let form = form("is there a red circle?").text("top", "2");
            json_of(c.post(&url).multipart(form).send().await.unwrap()).await
        })
    });
    for ask in asks.collect::<Vec<_>>() {
        let (status, body) = ask.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["answers"].as_array().unwrap().len(), 2);
    }
    let (_, metrics) = json_of(
        c.get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let vqa = &metrics["vqa"];
    assert_eq!(vqa["questions"], 13);
    assert!(vqa["forward_passes"].as_u64().unwrap() <= 13, "{vqa}");

    // Bad requests: each a JSON 4xx that names the problem.
    let cases: Vec<(Form, u16, &str)> = vec![
        (
            Form::new().part("image", Part::bytes(image_png()).file_name("q.png")),
            400,
            "missing_field",
        ),
        (form("   "), 422, "empty_text"),
        (form(&"what ".repeat(20)), 422, "bad_question"),
        (form(&"x".repeat(300)), 413, "text_too_long"),
        (form("what color?").text("top", "0"), 422, "bad_top"),
        (
            Form::new().text("question", "what color?"),
            400,
            "image_count",
        ),
        (
            Form::new()
                .part(
                    "image",
                    Part::bytes(b"not a png".to_vec()).file_name("q.png"),
                )
                .text("question", "what color?"),
            422,
            "bad_image",
        ),
        (
            form("what color?").text("labels", "a,b"),
            400,
            "unknown_field",
        ),
    ];
    for (form, status, code) in cases {
        let (got, body): (u16, Value) =
            json_of(c.post(&url).multipart(form).send().await.unwrap()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap_or_default()),
            (status, code),
            "{body}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_vqa_model_says_so() {
    let s = setup();
    let server = crate::common::start(&s, test_config()).await;
    let c = reqwest::Client::new();
    let (status, body) = json_of(
        c.post(format!("{}/vqa", server.url))
            .multipart(form("what color is the shape?"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "no_vqa_model");
    server.stop().await;
}
