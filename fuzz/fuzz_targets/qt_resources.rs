//! Any bytes as a Qt resource blob (`.rcc`, how GCompris ships its pictures and sounds): the
//! files come out with their paths, or an error names the damage; never a panic, a loop, or an
//! allocation the header alone asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mm_data::qt_resources::read_rcc;

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = read_rcc(data) {
        for f in files {
            assert!(f.path.starts_with('/'), "{}", f.path);
        }
    }
});
