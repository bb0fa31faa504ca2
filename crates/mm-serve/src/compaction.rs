//! Folding the index's log into a new snapshot in the background, so that searches and
//! additions keep answering while the snapshot file is written.
//!
//! An addition that leaves the log past half its limit
//! ([`DurableIndex::wants_compaction`]) starts one fold on a blocking thread, unless one is
//! running: the index is copied under a read lock, written with no lock held, and the log cut
//! under a short write lock ([`mm_retrieval::compact`]). Should folds fall behind, `add` folds
//! in line once the log passes its whole limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use mm_retrieval::{DurableIndex, IndexError};
use serde_json::{Value, json};

/// Folds done, failed and running, for `/metrics`.
#[derive(Debug, Default)]
pub struct Compaction {
    running: AtomicBool,
    done: AtomicU64,
    failed: AtomicU64,
}

impl Compaction {
    /// Starts a fold of `index`'s log on a blocking thread, unless one is running.
    pub fn start(self: &Arc<Self>, index: &Arc<RwLock<DurableIndex>>) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (this, index) = (self.clone(), index.clone());
        tokio::task::spawn_blocking(move || {
            match fold(&index) {
                Ok(()) => this.done.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    eprintln!("mm-serve: folding the index log into a snapshot failed: {e}");
                    this.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            this.running.store(false, Ordering::Release);
        });
    }

    /// `{"compactions", "failed", "running"}`.
    pub fn snapshot(&self) -> Value {
        json!({
            "compactions": self.done.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "running": self.running.load(Ordering::Relaxed),
        })
    }
}

fn fold(index: &RwLock<DurableIndex>) -> Result<(), IndexError> {
    let pending = index
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .begin_snapshot()?;
    let written = pending.write()?;
    index
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .finish_snapshot(written)
}
