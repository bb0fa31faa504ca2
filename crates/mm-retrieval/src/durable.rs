//! [`DurableIndex`]: an index folder that survives crashes.
//!
//! A folder holds `index.mmi` (a [snapshot](crate::snapshot), replaced atomically by
//! [`DurableIndex::save`]) and `log.mmw`, an append-only log of additions since. An addition is
//! written to the log and fsynced before [`DurableIndex::add`] returns, so what was
//! acknowledged survives a crash; opening replays the log. A record cut short by a crash (never
//! acknowledged) is dropped; damage before the last record is an error, not silent loss.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exact::ExactIndex;
use crate::hnsw::HnswIndex;
use crate::index::{IndexError, IndexKind, VectorIndex, check_rows};
use crate::snapshot::{Snapshot, read_snapshot, sync_dir, write_snapshot};
use crate::usearch_index::UsearchIndex;

/// The snapshot's file name inside an index folder.
pub const SNAPSHOT_FILE: &str = "index.mmi";
/// The log's file name inside an index folder.
pub const LOG_FILE: &str = "log.mmw";
const RECORD_MAGIC: u32 = 0x4d4d_5752; // "MMWR"
const RECORD_HEAD: usize = 4 + 8 + 8 + 8 + 8;
/// The log is folded into the snapshot once it grows past this many bytes.
const LOG_COMPACT_BYTES: u64 = 256 << 20;

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
    dir: PathBuf,
    index: Box<dyn VectorIndex>,
    metadata: Vec<Value>,
    log: File,
    log_bytes: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
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
            Box::new(HnswIndex::from_graph(dim, params, graph)?)
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
            metadata,
            log,
            log_bytes: at as u64,
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
        self.log.write_all(&record).map_err(io(&log_path))?;
        self.log.sync_data().map_err(io(&log_path))?;
        self.log_bytes += record.len() as u64;
        let ids = self.index.add(vectors)?;
        self.metadata.extend(metadata);
        if self.log_bytes > LOG_COMPACT_BYTES {
            self.save()?;
        }
        Ok(ids)
    }

    /// Writes a new snapshot (atomically) and empties the log.
    pub fn save(&mut self) -> Result<(), IndexError> {
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
        write_snapshot(&self.dir.join(SNAPSHOT_FILE), &snapshot)?;
        let log_path = self.dir.join(LOG_FILE);
        self.log.set_len(0).map_err(io(&log_path))?;
        self.log.sync_all().map_err(io(&log_path))?;
        self.log_bytes = 0;
        sync_dir(&self.dir)
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

fn encode_record(first_id: u64, vectors: &[f32], metadata: &[Value]) -> Vec<u8> {
    let meta = serde_json::to_vec(metadata).expect("JSON values serialize");
    let mut out = Vec::with_capacity(RECORD_HEAD + vectors.len() * 4 + meta.len() + 4);
    out.extend(RECORD_MAGIC.to_le_bytes());
    out.extend(first_id.to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    out.extend(((vectors.len() * 4) as u64).to_le_bytes());
    out.extend((meta.len() as u64).to_le_bytes());
    out.extend(vectors.iter().flat_map(|v| v.to_le_bytes()));
    out.extend(&meta);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}

enum Record {
    /// Length in bytes, first id, vectors, metadata.
    Whole(usize, u64, Vec<f32>, Vec<Value>),
    /// Cut short at the end of the log.
    Torn,
    /// Unreadable with more data after it.
    Damaged(String),
}

fn parse_record(bytes: &[u8], dim: usize) -> Record {
    if bytes.len() < RECORD_HEAD {
        return Record::Torn;
    }
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let magic = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let (first_id, rows, vec_bytes, meta_bytes) = (u64_at(4), u64_at(12), u64_at(20), u64_at(28));
    let total = (RECORD_HEAD as u128) + vec_bytes as u128 + meta_bytes as u128 + 4;
    if total > bytes.len() as u128 {
        // Lengths pointing past the end: a torn write (or a damaged length, which then also
        // fails the magic or the checksum of a whole record).
        return if magic == RECORD_MAGIC {
            Record::Torn
        } else {
            Record::Damaged("bad magic".into())
        };
    }
    let total = total as usize;
    let crc = u32::from_le_bytes(bytes[total - 4..total].try_into().expect("4 bytes"));
    let tail = total == bytes.len();
    let bad = |reason: &str| {
        if tail {
            Record::Torn
        } else {
            Record::Damaged(reason.into())
        }
    };
    if magic != RECORD_MAGIC {
        return bad("bad magic");
    }
    if crc32fast::hash(&bytes[..total - 4]) != crc {
        return bad("checksum mismatch");
    }
    if vec_bytes != rows * dim as u64 * 4 {
        return Record::Damaged("vector bytes do not match rows x dim".into());
    }
    let v_end = RECORD_HEAD + vec_bytes as usize;
    let vectors = bytes[RECORD_HEAD..v_end]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    match serde_json::from_slice::<Vec<Value>>(&bytes[v_end..total - 4]) {
        Ok(meta) if meta.len() as u64 == rows => Record::Whole(total, first_id, vectors, meta),
        Ok(_) => Record::Damaged("metadata count differs from rows".into()),
        Err(e) => Record::Damaged(format!("metadata: {e}")),
    }
}
