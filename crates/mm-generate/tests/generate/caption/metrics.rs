//! BLEU-1..4 and CIDEr-D against pycocoevalcap 1.2's own scorers on a fixed set of 60
//! candidate/reference items (`fixtures/caption_metrics/generate.py`), within 1e-9.

use mm_generate::metrics::{bleu, cider};
use serde_json::Value;

const TOLERANCE: f64 = 1e-9;

fn words(s: &Value) -> Vec<String> {
    s.as_str()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn bleu_and_cider_match_pycocoevalcap() {
    let path = mm_data::package_dir!().join("tests/fixtures/caption_metrics/expected.json");
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let items = exp["items"].as_array().unwrap();
    let candidates: Vec<Vec<String>> = items.iter().map(|i| words(&i["candidate"])).collect();
    let references: Vec<Vec<Vec<String>>> = items
        .iter()
        .map(|i| {
            i["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(words)
                .collect()
        })
        .collect();
    let b = bleu(&candidates, &references).unwrap();
    for k in 0..4 {
        let want = exp["bleu"][k].as_f64().unwrap();
        assert!(
            (b.corpus[k] - want).abs() < TOLERANCE,
            "BLEU-{}: {} vs {want}",
            k + 1,
            b.corpus[k]
        );
        for (i, item) in b.items.iter().enumerate() {
            let want = exp["bleu_items"][k][i].as_f64().unwrap();
            assert!(
                (item[k] - want).abs() < TOLERANCE,
                "item {i} BLEU-{}",
                k + 1
            );
        }
    }
    let c = cider(&candidates, &references).unwrap();
    let want = exp["cider"].as_f64().unwrap();
    assert!(
        (c.mean - want).abs() < TOLERANCE,
        "CIDEr-D {} vs {want}",
        c.mean
    );
    for (i, item) in c.items.iter().enumerate() {
        let want = exp["cider_items"][i].as_f64().unwrap();
        assert!(
            (item - want).abs() < TOLERANCE,
            "item {i} CIDEr-D {item} vs {want}"
        );
    }
    // The figures are not trivial: some items match, some do not.
    assert!(c.items.iter().any(|&x| x > 1.0) && c.items.iter().any(|&x| x < 0.1));
}
