//! Helpers the diffusion tests share: where a fixture lives, and its JSON numbers.

use std::path::PathBuf;

use serde_json::Value;

/// `tests/fixtures/<name>` of this crate.
pub fn fixtures(name: &str) -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures").join(name)
}

/// A JSON array of numbers as `f32`s.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
