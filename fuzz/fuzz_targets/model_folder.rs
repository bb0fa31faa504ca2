//! Any bytes as an HF CLIP folder (`config.json` + `model.safetensors`): loading gives a model
//! or an error that names the problem, never a panic. Input: the config's length (2 bytes,
//! little-endian), the config, then the weights.
#![no_main]

use burn::backend::NdArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (config, weights) = data[2..].split_at(n);
    // A config may ask for any size of model: keep to what a fuzz run can allocate.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(config) {
        let too_big = |c: &serde_json::Value| {
            [
                "hidden_size",
                "intermediate_size",
                "vocab_size",
                "max_position_embeddings",
            ]
            .iter()
            .any(|k| c[k].as_u64().is_some_and(|x| x > 4096))
                || c["num_hidden_layers"].as_u64().is_some_and(|x| x > 8)
                || c["image_size"].as_u64().is_some_and(|x| x > 256)
        };
        if too_big(&v["text_config"]) || too_big(&v["vision_config"]) {
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("mm-fuzz-folder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
    let _ = mm_vl::hf::load_any_clip::<NdArray>(&dir, &Default::default());
});
