//! Any bytes through the WAV/FLAC/Ogg decoders: an error is fine, a panic, a hang or a huge
//! allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = mm_audio::decode_audio(data, "fuzz") {
        assert_eq!(audio.samples.len() % audio.channels, 0);
        let _ = audio.to_mono();
    }
});
