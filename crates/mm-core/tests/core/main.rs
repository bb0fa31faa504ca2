//! mm-core's integration tests, in one binary (one link instead of six; CI's build time is
//! mostly linking test binaries against Burn's backends).
//!
//! `tests/deep_cca.rs` stays a binary of its own: its gradient check runs on `NdArray<f64>`,
//! and in one process with the `NdArray<f32>` tests here its gradients came back as f32
//! (measured 2026-12-01: "expected F32, got F64"), so f32 and f64 ndarray tensors do not
//! share a process safely.
//!
//! Burn's backend RNG is process-global: tests that seed a backend and train take
//! [`seeded`] first, so two of them never interleave their draws.

use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

mod adamw;
mod cca_parity;
mod fit_loop;
mod fused;
mod fused_attention;
mod fused_batch_norm;
mod fused_conv;
mod fused_norm;
mod fusion;
mod hf_layers;
mod info_measures;

/// Serializes the tests that seed a backend's global RNG and depend on its draws.
pub fn seeded() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `tests/fixtures/{name}/expected.json`, the reference a fixture script wrote.
pub fn fixture_json(name: &str) -> Value {
    let path = mm_data::package_dir!().join(format!("tests/fixtures/{name}/expected.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}
