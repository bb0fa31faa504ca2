//! Any text as a JSONL manifest of each record type: an error names the line; a parsed
//! manifest resolves its paths without a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mm_data::manifest::{
    AudioLabel, ImageCaption, ImageMask, ImageSound, Manifest, QuestionAnswer, VideoClip,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("datasets/fuzz/manifest.jsonl");
    if let Ok(m) = Manifest::<ImageCaption>::parse(text, path) {
        for r in &m.records {
            let _ = m.image_path(r);
        }
        let again = Manifest::<ImageCaption>::to_jsonl(&m.records);
        let reparsed = Manifest::<ImageCaption>::parse(&again, path).expect("our own output");
        assert_eq!(reparsed.records.len(), m.records.len());
    }
    let _ = Manifest::<QuestionAnswer>::parse(text, path);
    let _ = Manifest::<AudioLabel>::parse(text, path);
    let _ = Manifest::<ImageSound>::parse(text, path);
    let _ = Manifest::<ImageMask>::parse(text, path);
    let _ = Manifest::<VideoClip>::parse(text, path);
});
