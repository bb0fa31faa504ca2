//! Every class of bad request to the HTTP service gets a JSON 4xx that names the problem, and
//! none of them loses what the index already holds.

use reqwest::multipart::{Form, Part};
use serde_json::json;

use crate::common::*;

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
