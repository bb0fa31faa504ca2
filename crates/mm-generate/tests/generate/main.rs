//! mm-generate's integration tests, in one binary (one link instead of two; CI's build time is
//! mostly compiling and linking test binaries against Burn's backends).

use std::sync::{Mutex, MutexGuard};

mod caption;
mod diffusion;

/// Serializes the tests that seed a backend's global RNG and depend on its draws (Burn's
/// backend RNG is process-global, and these tests share one process).
pub fn seeded() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
