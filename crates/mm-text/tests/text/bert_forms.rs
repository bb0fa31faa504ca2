//! A sentence-transformers BERT folder in the older form (a lone `pytorch_model.bin`, the slow
//! tokenizer's `vocab.txt` + `tokenizer_config.json`, no `sentence_bert_config.json`) gives
//! sentence-transformers' embeddings within 1e-4, with its length limit taken from the
//! tokenizer's `model_max_length` (lower-casing, accents, CJK, unknown words and truncation on
//! the way). Reference: `tests/fixtures/bert_forms/generate.py`. Also: a folder without a
//! tokenizer or weights is a named error.

use std::path::PathBuf;

use burn::backend::NdArray;
use mm_text::bert::SentenceEncoder;
use serde_json::Value;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/bert_forms")
}

#[test]
fn bin_and_vocab_txt_folder_matches_sentence_transformers() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let encoder =
        SentenceEncoder::<NdArray>::load(&fixtures().join("bin_vocab_txt"), &Default::default())
            .unwrap();
    assert!(encoder.normalize);
    assert_eq!(
        encoder.max_seq_length as u64,
        expected["max_seq_length"].as_u64().unwrap()
    );
    crate::common::assert_matches_reference(&encoder, &expected, 1e-4);
}

#[test]
fn a_folder_without_tokenizer_or_weights_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let from = fixtures().join("bin_vocab_txt");
    for (skip, needle) in [
        ("vocab.txt", "looked for tokenizer.json and vocab.txt"),
        ("pytorch_model.bin", "model.safetensors.index.json"),
    ] {
        let dir = tmp.path().join(skip);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() && entry.file_name() != skip {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
        let err = SentenceEncoder::<NdArray>::load(&dir, &Default::default())
            .err()
            .expect("loading should fail")
            .to_string();
        assert!(err.contains(needle), "without {skip}: {err}");
    }
}
