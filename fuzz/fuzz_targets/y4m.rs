//! Any bytes as a Y4M stream: the header is read or named as corrupt, frames come out at the
//! header's size, never a panic or an allocation the header alone asks for.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mm_video::y4m::Y4mReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = Y4mReader::new(Cursor::new(data), Path::new("fuzz.y4m")) else {
        return;
    };
    let (w, h) = (reader.header().width, reader.header().height);
    for _ in 0..4 {
        match reader.next_frame() {
            Ok(Some(frame)) => assert_eq!((frame.width(), frame.height()), (w, h)),
            _ => break,
        }
    }
});
