//! Any bytes through the image decoders (PNG, JPEG, GIF, WebP) and CLIP's preprocessing: an
//! error is fine; a panic, a hang or a huge allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mm_vision::decode::decode_image_with;
use mm_vision::{AlphaMode, ClipImageProcessor};

fuzz_target!(|data: &[u8]| {
    let alpha = match data.first().map(|b| b % 3) {
        Some(0) => AlphaMode::CompositeOnWhite,
        Some(1) => AlphaMode::Drop,
        _ => AlphaMode::RequireRgb,
    };
    if let Ok(image) = decode_image_with(data, "fuzz", alpha) {
        assert!(image.width > 0 && image.height > 0);
        let pixels = ClipImageProcessor::clip(32).preprocess(&image);
        assert_eq!(pixels.len(), 3 * 32 * 32);
        assert!(pixels.iter().all(|v| v.is_finite()));
    }
});
