//! mm-vl's integration tests, in one binary (one link instead of five; CI's build time is
//! mostly linking test binaries against Burn's backends).

use std::sync::{Mutex, MutexGuard};

mod common;
mod hf_forms;
mod hf_parity;
mod hf_vilt;
mod vqa;
mod zero_shot;

/// Serializes the tests that seed a backend's global RNG and depend on its draws (Burn's
/// backend RNG is process-global, and these tests share one process).
pub fn seeded() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
