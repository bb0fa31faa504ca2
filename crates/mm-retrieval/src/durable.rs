//! [`DurableIndex`]: an index folder that survives crashes.
//!
//! A folder holds `index.mmi` (a [snapshot](crate::snapshot), replaced atomically by
//! [`DurableIndex::save`]) and `log.mmw`, an append-only log of additions since. An addition is
//! written to the log and fsynced before [`DurableIndex::add`] returns, so what was
//! acknowledged survives a crash; opening replays the log. A record cut short by a crash (never
//! acknowledged) is dropped; damage before the last record is an error, not silent loss.
//! Folding the log into a snapshot can run in three steps, the slow one outside any lock
//! ([`crate::compact`]); `add` does it in line only once the log passes its limit.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compact::WriterLock;
use crate::exact::ExactIndex;
use crate::hnsw::HnswIndex;
use crate::index::{IndexError, IndexKind, VectorIndex, check_rows};
use crate::snapshot::{Snapshot, read_snapshot};
use crate::usearch_index::UsearchIndex;
use crate::wal::{Record, encode_record, parse_record};

/// The snapshot's file name inside an index folder.
pub const SNAPSHOT_FILE: &str = "index.mmi";
/// The log's file name inside an index folder.
pub const LOG_FILE: &str = "log.mmw";
/// By default `add` folds the log into a new snapshot once it grows past this many bytes.
pub const LOG_LIMIT_BYTES: u64 = 256 << 20;

/// One search result with the metadata stored for its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The id.
    pub id: u64,
    /// Inner product with the query.
    pub score: f32,
    /// What was stored with the vector.
    pub metadata: Value,
}

/// An index with metadata, a snapshot and a write-ahead log.
pub struct DurableIndex {
    pub(crate) dir: PathBuf,
    pub(crate) index: Box<dyn VectorIndex>,
    pub(crate) metadata: Vec<Value>,
    pub(crate) log: File,
    /// Bytes in the log now.
    pub(crate) log_bytes: u64,
    /// Counts the times the log was emptied or cut (a snapshot's log length is only valid in
    /// the generation it was taken in).
    pub(crate) log_generation: u64,
    /// `add` saves a snapshot itself once the log is longer than this.
    log_limit: u64,
    /// Taken by whoever writes a snapshot file.
    pub(crate) writer: WriterLock,
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Builds the in-memory index a snapshot describes (from its vectors or its graph).
pub fn build_index<B: Backend>(
    snap: &Snapshot,
    device: &B::Device,
) -> Result<Box<dyn VectorIndex>, IndexError>
where
    B::Device: Send + Sync,
{
    let (dim, graph) = (snap.dim, &snap.graph);
    Ok(match snap.kind {
        IndexKind::Exact => {
            let mut index = ExactIndex::<B>::new(dim, device);
            index.add(&snap.vectors)?;
            Box::new(index)
        }
        IndexKind::Hnsw(params) if !graph.is_empty() => {
            match HnswIndex::from_graph(dim, params, graph) {
                Ok(index) => Box::new(index),
                // Folders written before our own graph hold usearch's bytes under "hnsw".
                Err(_) if UsearchIndex::is_usearch_graph(graph) => Box::new(
                    UsearchIndex::from_graph(dim, params, graph, snap.metadata.len())?,
                ),
                Err(e) => return Err(e),
            }
        }
        IndexKind::Hnsw(params) => Box::new(HnswIndex::new(dim, params)?),
        IndexKind::Usearch(params) if !graph.is_empty() => Box::new(UsearchIndex::from_graph(
            dim,
            params,
            graph,
            snap.metadata.len(),
        )?),
        IndexKind::Usearch(params) => Box::new(UsearchIndex::new(dim, params)?),
    })
}

impl DurableIndex {
    /// Creates a new index folder at `dir` around an empty `index`; refuses to overwrite one.
    pub fn create(dir: &Path, index: Box<dyn VectorIndex>) -> Result<Self, IndexError> {
        if dir.join(SNAPSHOT_FILE).exists() {
            return Err(IndexError::Invalid(format!(
                "{} already holds an index",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let log_path = dir.join(LOG_FILE);
        // Append mode: after `save` empties the log, the next record must land at its start.
        let log = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        log.set_len(0).map_err(io(&log_path))?;
        let mut this = Self {
            dir: dir.to_path_buf(),
            index,
            metadata: Vec::new(),
            log,
            log_bytes: 0,
            log_generation: 0,
            log_limit: LOG_LIMIT_BYTES,
            writer: WriterLock::default(),
        };
        this.save()?;
        Ok(this)
    }

    /// Opens the index folder at `dir`, replaying its log; exact indexes live on `device`.
    pub fn open<B: Backend>(dir: &Path, device: &B::Device) -> Result<Self, IndexError>
    where
        B::Device: Send + Sync,
    {
        let snap = read_snapshot(&dir.join(SNAPSHOT_FILE))?;
        let mut index = build_index::<B>(&snap, device)?;
        let mut metadata = snap.metadata;
        let in_snapshot = metadata.len();
        if index.len() != in_snapshot {
            return Err(IndexError::Corrupt {
                path: dir.join(SNAPSHOT_FILE),
                reason: format!("{} vectors but {in_snapshot} metadata values", index.len()),
            });
        }
        let log_path = dir.join(LOG_FILE);
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(io(&log_path))?;
        let mut at = 0usize;
        while at < bytes.len() {
            match parse_record(&bytes[at..], snap.dim) {
                Record::Whole(len, first_id, vectors, meta) => {
                    let count = metadata.len() as u64;
                    let rows = meta.len() as u64;
                    if first_id > count {
                        return Err(IndexError::Corrupt {
                            path: log_path,
                            reason: format!("record for ids {first_id}.. follows id {count}"),
                        });
                    }
                    // Records already in the snapshot (a crash after saving) are skipped.
                    let skip = (count - first_id).min(rows) as usize;
                    index.add(&vectors[skip * snap.dim..])?;
                    metadata.extend(meta.into_iter().skip(skip));
                    at += len;
                }
                Record::Torn => {
                    // A crash cut the last record short: it was never acknowledged.
                    log.set_len(at as u64).map_err(io(&log_path))?;
                    log.sync_all().map_err(io(&log_path))?;
                    break;
                }
                Record::Damaged(reason) => {
                    return Err(IndexError::Corrupt {
                        path: log_path,
                        reason: format!("record at byte {at}: {reason}"),
                    });
                }
            }
        }
        log.seek(SeekFrom::End(0)).map_err(io(&log_path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
            writer: WriterLock::new(Mutex::new(Some(in_snapshot))),
            metadata,
            log,
            log_bytes: at as u64,
            log_generation: 0,
            log_limit: LOG_LIMIT_BYTES,
        })
    }

    /// Adds `vectors` (row-major) with one metadata value each; durable when it returns.
    pub fn add(&mut self, vectors: &[f32], metadata: Vec<Value>) -> Result<Range<u64>, IndexError> {
        let rows = check_rows(vectors, self.index.dim())?;
        if rows != metadata.len() {
            return Err(IndexError::Invalid(format!(
                "{rows} vectors but {} metadata values",
                metadata.len()
            )));
        }
        let first_id = self.metadata.len() as u64;
        let record = encode_record(first_id, vectors, &metadata);
        let log_path = self.dir.join(LOG_FILE);
        let written = self
            .log
            .write_all(&record)
            .and_then(|()| self.log.sync_data());
        if let Err(e) = written {
            // A full disk can leave part of the record behind; a later addition appended after
            // it would make the log unreadable. Cut it off (best effort: the next open also
            // drops a torn last record).
            let _ = self.log.set_len(self.log_bytes);
            return Err(io(&log_path)(e));
        }
        self.log_bytes += record.len() as u64;
        let ids = self.index.add(vectors)?;
        self.metadata.extend(metadata);
        if self.log_bytes > self.log_limit {
            self.save()?;
        }
        Ok(ids)
    }

    /// Bytes in the log (additions since the snapshot).
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Sets the log length past which [`Self::add`] saves a snapshot before it returns
    /// ([`LOG_LIMIT_BYTES`] by default).
    pub fn set_log_limit(&mut self, bytes: u64) {
        self.log_limit = bytes.max(1);
    }

    /// Whether the log has grown past half its limit: time to fold it into a snapshot in the
    /// background ([`Self::begin_snapshot`]), before [`Self::add`] has to do it in line.
    pub fn wants_compaction(&self) -> bool {
        self.log_bytes > self.log_limit / 2
    }

    /// The `k` best entries for each query, with their metadata.
    pub fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Found>>, IndexError> {
        Ok(self
            .index
            .search_batch(queries, k)?
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| Found {
                        id: h.id,
                        score: h.score,
                        metadata: self
                            .metadata
                            .get(h.id as usize)
                            .cloned()
                            .unwrap_or(Value::Null),
                    })
                    .collect()
            })
            .collect())
    }

    /// The underlying index.
    pub fn index(&self) -> &dyn VectorIndex {
        self.index.as_ref()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.metadata.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty()
    }

    /// The metadata stored for `id`.
    pub fn metadata(&self, id: u64) -> Option<&Value> {
        self.metadata.get(id as usize)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
