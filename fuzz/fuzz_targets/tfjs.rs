//! Any bytes as a TensorFlow.js graph model folder (`model.json` + `weights.bin`): reading it
//! and building the runner give a model or an error that names the problem, never a panic,
//! a read outside the folder, or an allocation the manifest alone asks for. Input: the JSON's
//! length (2 bytes, little-endian), the JSON, then the weights.
#![no_main]

use burn::backend::NdArray;
use libfuzzer_sys::fuzz_target;
use mm_vision::tfjs::{GraphModel, TfjsModel};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (json, weights) = data[2..].split_at(n);
    let dir = std::env::temp_dir().join(format!("mm-fuzz-tfjs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.json"), json).unwrap();
    std::fs::write(dir.join("weights.bin"), weights).unwrap();
    if let Ok(graph) = GraphModel::load(&dir) {
        for c in graph.constants.values() {
            assert_eq!(c.shape.iter().product::<usize>(), c.values.len());
        }
        let _ = TfjsModel::<NdArray>::new(graph, &Default::default());
    }
});
