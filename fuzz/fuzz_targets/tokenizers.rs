//! Arbitrary UTF-8 (and over-long text) through the CLIP BPE and BERT WordPiece tokenizers:
//! every encoding fits its length limit, decodes without a panic, and an error names the text.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mm_text::ClipTokenizer;
use mm_text::wordpiece::WordPieceTokenizer;

fn clip() -> &'static ClipTokenizer {
    static CLIP: OnceLock<ClipTokenizer> = OnceLock::new();
    CLIP.get_or_init(ClipTokenizer::bundled)
}

fn wordpiece() -> &'static WordPieceTokenizer {
    static WP: OnceLock<WordPieceTokenizer> = OnceLock::new();
    WP.get_or_init(|| {
        WordPieceTokenizer::from_words(&[
            "what colour is the shape",
            "a red circle on a white page",
            "is there a green triangle",
            "naïve café über straße 東京",
        ])
        .expect("a vocabulary from words")
    })
}

/// The vocabulary's size, once (tokenizers' `get_vocab_size` copies the vocabulary).
fn clip_vocab() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| clip().vocab_size())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ids) = clip().encode(&text, 77) {
        assert!(ids.len() <= 77);
        assert!(ids.iter().all(|&id| (id as usize) < clip_vocab()));
    }
    let _ = clip().count_tokens(&text);
    if let Ok((ids, used)) = wordpiece().encode(&text, 32) {
        assert!(used <= ids.len() && ids.len() <= 32);
        let _ = wordpiece().decode(&ids[..used]);
    }
    let _ = wordpiece().count_tokens(&text);
});
