//! The index file (`index.mmi`): everything an index holds, written so a crash never loses
//! the previous file (a temporary file beside it, fsync, rename, fsync of the folder).
//!
//! Layout: the magic `MMINDEX1`, a little-endian u64 header length, the JSON [`Header`], then
//! the body: the vectors (f32 little-endian, row-major; absent for the HNSW kinds, whose graph
//! carries them), the graph bytes, and the metadata as one JSON value per line. The header records
//! each section's length and the CRC-32 of the body.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::index::{IndexError, IndexKind};

const MAGIC: &[u8; 8] = b"MMINDEX1";
/// Largest header accepted (a corrupt length must not allocate gigabytes).
const MAX_HEADER: u64 = 1 << 20;

/// What the file holds, and how long each section is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The index implementation and its parameters.
    pub kind: IndexKind,
    /// Vector width.
    pub dim: usize,
    /// Number of vectors (and of metadata lines).
    pub count: usize,
    /// Bytes of vectors.
    pub vector_bytes: u64,
    /// Bytes of the HNSW graph.
    pub graph_bytes: u64,
    /// Bytes of metadata.
    pub metadata_bytes: u64,
    /// CRC-32 of the body.
    pub crc32: u32,
}

/// An index's content as read from or written to a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The index implementation and its parameters.
    pub kind: IndexKind,
    /// Vector width.
    pub dim: usize,
    /// Row-major vectors (empty when `graph` carries them).
    pub vectors: Vec<f32>,
    /// The serialized HNSW graph.
    pub graph: Vec<u8>,
    /// One metadata value per vector, in id order.
    pub metadata: Vec<Value>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Fsyncs a folder so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), IndexError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

/// Writes `snapshot` to `path` atomically: the old file stays whole until the new one is.
pub fn write_snapshot(path: &Path, snapshot: &Snapshot) -> Result<(), IndexError> {
    let vectors: Vec<u8> = snapshot
        .vectors
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut metadata = Vec::new();
    for m in &snapshot.metadata {
        serde_json::to_writer(&mut metadata, m).expect("JSON values serialize");
        metadata.push(b'\n');
    }
    let mut crc = crc32fast::Hasher::new();
    for part in [&vectors, &snapshot.graph, &metadata] {
        crc.update(part);
    }
    let header = Header {
        kind: snapshot.kind,
        dim: snapshot.dim,
        count: snapshot.metadata.len(),
        vector_bytes: vectors.len() as u64,
        graph_bytes: snapshot.graph.len() as u64,
        metadata_bytes: metadata.len() as u64,
        crc32: crc.finalize(),
    };
    let header = serde_json::to_vec(&header).expect("header serializes");
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("index")
    ));
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        let w = &mut f;
        w.write_all(MAGIC).map_err(io(&tmp))?;
        w.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io(&tmp))?;
        for part in [&header, &vectors, &snapshot.graph, &metadata] {
            w.write_all(part).map_err(io(&tmp))?;
        }
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

/// Reads an index file, checking its magic, lengths and checksum.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, IndexError> {
    let mut f = OpenOptions::new().read(true).open(path).map_err(io(path))?;
    let file_len = f.metadata().map_err(io(path))?.len();
    let mut magic = [0u8; 8];
    let mut len = [0u8; 8];
    f.read_exact(&mut magic)
        .and_then(|_| f.read_exact(&mut len))
        .map_err(|_| corrupt(path, "too short to be an index file"))?;
    if &magic != MAGIC {
        return Err(corrupt(path, "not an mm index file (bad magic)"));
    }
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || header_len + 16 > file_len {
        return Err(corrupt(
            path,
            format!("header length {header_len} is impossible"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(io(path))?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|e| corrupt(path, format!("header is not valid: {e}")))?;
    let body =
        header.vector_bytes as u128 + header.graph_bytes as u128 + header.metadata_bytes as u128;
    if body + 16 + header_len as u128 != file_len as u128 {
        return Err(corrupt(
            path,
            format!(
                "file is {file_len} bytes, its header describes {}",
                body + 16 + header_len as u128
            ),
        ));
    }
    let expected_vectors = match header.kind {
        IndexKind::Exact => (header.count as u64)
            .checked_mul(header.dim as u64)
            .and_then(|n| n.checked_mul(4)),
        IndexKind::Hnsw(_) | IndexKind::Usearch(_) => Some(0),
    };
    if expected_vectors != Some(header.vector_bytes) {
        return Err(corrupt(path, "vector section does not match count x dim"));
    }
    let mut read = |n: u64| -> Result<Vec<u8>, IndexError> {
        let mut buf = vec![0u8; n as usize];
        f.read_exact(&mut buf).map_err(io(path))?;
        Ok(buf)
    };
    let vectors = read(header.vector_bytes)?;
    let graph = read(header.graph_bytes)?;
    let metadata = read(header.metadata_bytes)?;
    let mut crc = crc32fast::Hasher::new();
    for part in [&vectors, &graph, &metadata] {
        crc.update(part);
    }
    // Fuzzing builds skip the checksum so that mutated files reach the parsing after it.
    if crc.finalize() != header.crc32 && !cfg!(fuzzing) {
        return Err(corrupt(path, "checksum mismatch: the file is damaged"));
    }
    let metadata = metadata
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<Vec<Value>, _>>()
        .map_err(|e| corrupt(path, format!("metadata: {e}")))?;
    if metadata.len() != header.count {
        return Err(corrupt(
            path,
            "metadata count differs from the vector count",
        ));
    }
    Ok(Snapshot {
        kind: header.kind,
        dim: header.dim,
        vectors: vectors
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        graph,
        metadata,
    })
}
