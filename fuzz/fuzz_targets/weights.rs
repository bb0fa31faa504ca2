//! Any bytes as a weight file (`model.safetensors`, a shard index, `pytorch_model.bin`): an
//! error names the file; a panic or a huge allocation is a bug. The first byte picks the form.
#![no_main]

use burn::backend::NdArray;
use libfuzzer_sys::fuzz_target;
use mm_core::hf::WeightMap;

fuzz_target!(|data: &[u8]| {
    let Some((&form, bytes)) = data.split_first() else {
        return;
    };
    let name = match form % 3 {
        0 => "model.safetensors",
        1 => "model.safetensors.index.json",
        _ => "pytorch_model.bin",
    };
    let dir = std::env::temp_dir().join(format!("mm-fuzz-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let _ = WeightMap::<NdArray>::open(&path, &["position_ids"], &Default::default());
    std::fs::remove_file(&path).unwrap();
});
