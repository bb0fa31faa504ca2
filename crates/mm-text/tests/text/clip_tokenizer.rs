//! The bundled CLIP tokenizer gives the ids transformers' `CLIPTokenizerFast` gives on a
//! committed corpus (punctuation, non-ASCII, empty, whitespace-only and over-long texts).
//! Reference: `tests/fixtures/clip_tokenizer/generate.py`.

use mm_text::ClipTokenizer;
use serde_json::Value;

#[test]
fn ids_match_transformers_clip_tokenizer() {
    let path = mm_data::package_dir!().join("tests/fixtures/clip_tokenizer/expected.json");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let context = expected["context_length"].as_u64().unwrap() as usize;
    let tok = ClipTokenizer::bundled();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut truncated = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, context).unwrap();
        assert_eq!(got, want, "text {text:?}");
        truncated += usize::from(want.len() == context);
    }
    assert!(truncated >= 2, "the corpus must exercise truncation");
}
