//! mm-core's integration tests, in one binary (one link instead of seven; CI's build time is
//! mostly linking test binaries against Burn's backends).
//!
//! Burn's backend RNG is process-global: tests that seed a backend and train take
//! [`seeded`] first, so two of them never interleave their draws.

use std::sync::{Mutex, MutexGuard};

mod cca_parity;
mod data_parallel;
mod deep_cca;
mod fused;
mod fusion;
mod hf_layers;
mod info_measures;

/// Serializes the tests that seed a backend's global RNG and depend on its draws.
pub fn seeded() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
