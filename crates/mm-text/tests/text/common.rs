//! The check both sentence-embedding tests make: an encoder's embeddings of a fixture's
//! sentences against sentence-transformers' within a tolerance, sentence by sentence.

use burn::backend::NdArray;
use mm_text::bert::SentenceEncoder;
use serde_json::Value;

/// Encodes `expected["sentences"]` and compares each row with `expected["embeddings"]`.
pub fn assert_matches_reference(
    encoder: &SentenceEncoder<NdArray>,
    expected: &Value,
    tolerance: f32,
) {
    let sentences: Vec<&str> = expected["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let got = encoder
        .encode(&sentences)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let rows = expected["embeddings"].as_array().unwrap();
    assert_eq!(got.len() % rows.len().max(1), 0, "embedding count");
    let dim = got.len() / rows.len().max(1);
    for (i, (row, want)) in got.chunks(dim).zip(rows).enumerate() {
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(row.len(), want.len(), "sentence {i}: width");
        let worst = row
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= tolerance,
            "sentence {i} ({:?}): max abs difference {worst}",
            sentences[i]
        );
    }
}
