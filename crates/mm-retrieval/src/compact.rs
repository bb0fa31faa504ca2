//! Folding an index folder's log into a new snapshot in three steps, so a service can keep
//! answering searches while the snapshot file is written:
//!
//! 1. [`DurableIndex::begin_snapshot`] (`&self`, under a read lock): copies the index's content
//!    and notes how much of the log it covers;
//! 2. [`PendingSnapshot::write`] (no lock): writes the snapshot file atomically;
//! 3. [`DurableIndex::finish_snapshot`] (`&mut self`, a short write lock): drops the log
//!    records the snapshot holds, keeping those added meanwhile (rewritten into a new log
//!    that replaces the old one atomically).
//!
//! A crash between any two steps loses nothing: the old snapshot or the new one is whole, and
//! replaying a log skips records a snapshot already holds. Snapshot files are written one at a
//! time and never replaced by an older one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::durable::{DurableIndex, LOG_FILE, SNAPSHOT_FILE, io};
use crate::index::IndexError;
use crate::snapshot::{Snapshot, sync_dir, write_snapshot};

/// Entries held by the newest snapshot file written, behind the lock every writer takes.
pub(crate) type WriterLock = Arc<Mutex<Option<usize>>>;

/// An index folder's content copied by [`DurableIndex::begin_snapshot`], not yet on disk.
pub struct PendingSnapshot {
    dir: PathBuf,
    snapshot: Snapshot,
    log_bytes: u64,
    generation: u64,
    writer: WriterLock,
}

/// A snapshot on disk, whose log records [`DurableIndex::finish_snapshot`] can drop.
#[derive(Debug)]
pub struct WrittenSnapshot {
    log_bytes: u64,
    generation: u64,
}

impl PendingSnapshot {
    /// Entries the snapshot holds.
    pub fn len(&self) -> usize {
        self.snapshot.metadata.len()
    }

    /// Whether the snapshot holds no entry.
    pub fn is_empty(&self) -> bool {
        self.snapshot.metadata.is_empty()
    }

    /// Writes the snapshot file (temporary file, fsync, rename, fsync of the folder). Waits
    /// for another snapshot being written; skips the write if a newer one is already on disk.
    pub fn write(self) -> Result<WrittenSnapshot, IndexError> {
        let mut newest = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let entries = self.snapshot.metadata.len();
        if newest.is_none_or(|n| entries >= n) {
            write_snapshot(&self.dir.join(SNAPSHOT_FILE), &self.snapshot)?;
            *newest = Some(entries);
        }
        Ok(WrittenSnapshot {
            log_bytes: self.log_bytes,
            generation: self.generation,
        })
    }
}

impl DurableIndex {
    /// Copies the index, its metadata and the log length they cover (step 1 of 3).
    pub fn begin_snapshot(&self) -> Result<PendingSnapshot, IndexError> {
        let graph = self.index.graph_bytes()?;
        let snapshot = Snapshot {
            kind: self.index.kind(),
            dim: self.index.dim(),
            vectors: if graph.is_some() {
                Vec::new()
            } else {
                self.index.export()?
            },
            graph: graph.unwrap_or_default(),
            metadata: self.metadata.clone(),
        };
        Ok(PendingSnapshot {
            dir: self.dir.clone(),
            snapshot,
            log_bytes: self.log_bytes,
            generation: self.log_generation,
            writer: self.writer.clone(),
        })
    }

    /// Drops the log records a written snapshot holds (step 3 of 3). Records added since
    /// [`Self::begin_snapshot`] move to a new log; if another snapshot has emptied the log
    /// meanwhile, nothing is left to drop.
    pub fn finish_snapshot(&mut self, done: WrittenSnapshot) -> Result<(), IndexError> {
        if done.generation != self.log_generation || done.log_bytes > self.log_bytes {
            return Ok(());
        }
        let log_path = self.dir.join(LOG_FILE);
        if done.log_bytes == self.log_bytes {
            self.log.set_len(0).map_err(io(&log_path))?;
            self.log.sync_all().map_err(io(&log_path))?;
        } else {
            self.log = replace_with_tail(&self.dir, done.log_bytes, self.log_bytes)?;
        }
        self.log_bytes -= done.log_bytes;
        self.log_generation += 1;
        sync_dir(&self.dir)
    }

    /// Writes a new snapshot (atomically) and empties the log: all three steps at once.
    pub fn save(&mut self) -> Result<(), IndexError> {
        let done = self.begin_snapshot()?.write()?;
        self.finish_snapshot(done)
    }
}

/// Writes bytes `from..to` of the log to a new file and renames it over the log; returns the
/// new log, open for appending.
fn replace_with_tail(dir: &Path, from: u64, to: u64) -> Result<File, IndexError> {
    let log_path = dir.join(LOG_FILE);
    let mut tail = vec![0u8; (to - from) as usize];
    let mut old = File::open(&log_path).map_err(io(&log_path))?;
    old.seek(SeekFrom::Start(from))
        .and_then(|_| old.read_exact(&mut tail))
        .map_err(io(&log_path))?;
    let tmp = dir.join(format!(".{LOG_FILE}.tmp"));
    let mut new = File::create(&tmp).map_err(io(&tmp))?;
    new.write_all(&tail)
        .and_then(|_| new.sync_all())
        .map_err(io(&tmp))?;
    drop(new);
    std::fs::rename(&tmp, &log_path).map_err(io(&log_path))?;
    OpenOptions::new()
        .append(true)
        .open(&log_path)
        .map_err(io(&log_path))
}
