//! Records of an index folder's write-ahead log (`log.mmw`): one per addition, each with its
//! first id, row count, vectors, metadata and a CRC-32.
//!
//! Layout: magic `MMWR` (u32), first id, rows, vector bytes, metadata bytes (u64 each, all
//! little-endian), the vectors (f32), the metadata (a JSON array), the CRC-32 of all before it.

use serde_json::Value;

const RECORD_MAGIC: u32 = 0x4d4d_5752; // "MMWR"
const RECORD_HEAD: usize = 4 + 8 + 8 + 8 + 8;

/// Encodes one addition: `metadata.len()` rows of `vectors`, the first with id `first_id`.
pub(crate) fn encode_record(first_id: u64, vectors: &[f32], metadata: &[Value]) -> Vec<u8> {
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

/// What [`parse_record`] found at the start of a byte slice.
pub(crate) enum Record {
    /// Length in bytes, first id, vectors, metadata.
    Whole(usize, u64, Vec<f32>, Vec<Value>),
    /// Cut short at the end of the log.
    Torn,
    /// Unreadable with more data after it.
    Damaged(String),
}

/// Reads the record at the start of `bytes` (vectors of width `dim`).
pub(crate) fn parse_record(bytes: &[u8], dim: usize) -> Record {
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
    // Fuzzing builds skip the checksum so that mutated records reach the parsing after it.
    if crc32fast::hash(&bytes[..total - 4]) != crc && !cfg!(fuzzing) {
        return bad("checksum mismatch");
    }
    if rows.checked_mul(dim as u64).and_then(|n| n.checked_mul(4)) != Some(vec_bytes) {
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
