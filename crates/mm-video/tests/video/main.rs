//! mm-video's integration tests, in one binary (one link instead of six; CI's build time is
//! mostly linking test binaries against Burn's backends).
//!
//! Burn's backend RNG is process-global: the tests that train take [`seeded`] first, so two
//! of them never interleave their draws.

use std::sync::{Mutex, MutexGuard};

mod av_sync;
mod ffmpeg_codecs;
mod localizer;
mod localizer_backbone;
mod localizer_bridge;
mod localizer_loss;
mod pure_rust;
mod sound_embeddings;
mod training;
mod video_models;

/// Serializes the tests that seed a backend's global RNG and depend on its draws.
pub fn seeded() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
