//! Qt's compiled resource files (`.rcc`, what `rcc -binary` writes): a file tree packed into
//! one blob, as applications built on Qt ship their pictures and sounds (GCompris does). This
//! reads the tree and gives back every file with its path and bytes, inflating the ones stored
//! zlib-compressed.
//!
//! The layout (format versions 1 to 3): a 20-byte header (`qres`, the version, and the offsets
//! of the tree, the data and the names, all big-endian u32), then in version 3 a u32 of flags.
//! The tree is an array of fixed-size nodes, node 0 the root: a u32 name offset, u16 flags
//! (1: zlib, 2: directory, 4: zstd) and either a directory's child count and first child index
//! or a file's locale (2 x u16) and data offset; from version 2 a u64 modification time
//! follows. A name is a u16 length, a u32 hash and that many UTF-16BE code units; a file's
//! data is a u32 length and the bytes, which when zlib-compressed start with the inflated
//! length (u32) and then a zlib stream.
//!
//! Every offset and count is checked against the blob, so any bytes give either the files or
//! an [`RccError`] that says what is wrong, never a panic or an allocation the header alone
//! asks for.

use std::io::Read;

/// One file of a resource blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RccFile {
    /// Its path in the tree, `/`-separated, from the root (`/gcompris/src/.../cello.svg`).
    pub path: String,
    /// Its bytes, inflated where they were stored compressed.
    pub data: Vec<u8>,
}

/// Why a blob is not a readable resource file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RccError {
    /// It does not start with `qres`.
    #[error("not a Qt resource file (no `qres` magic)")]
    Magic,
    /// A format version this reader does not know.
    #[error("Qt resource format version {0} (this reader knows 1 to 3)")]
    Version(u32),
    /// A structure reaches past the end of the blob.
    #[error("truncated: {what} at byte {offset} runs past the end ({len} bytes)")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// The blob's length.
        len: usize,
    },
    /// A directory lists a child index that is not a node, or the tree loops.
    #[error("malformed tree: {0}")]
    Tree(String),
    /// A name is not valid UTF-16.
    #[error("a name at byte {0} is not valid UTF-16")]
    Name(usize),
    /// A file is stored zstd-compressed.
    #[error("{0} is zstd-compressed; only zlib and stored files are read")]
    Zstd(String),
    /// A zlib-compressed file does not inflate to its declared length.
    #[error("{path}: {reason}")]
    Inflate {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

const ZLIB: u16 = 1;
const DIRECTORY: u16 = 2;
const ZSTD: u16 = 4;
/// Deepest directory nesting read (a guard against trees that loop).
const MAX_DEPTH: usize = 64;

struct Blob<'a> {
    bytes: &'a [u8],
}

impl Blob<'_> {
    fn slice(&self, offset: usize, n: usize, what: &'static str) -> Result<&[u8], RccError> {
        offset
            .checked_add(n)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or(RccError::Truncated {
                what,
                offset,
                len: self.bytes.len(),
            })
    }

    fn u16(&self, offset: usize, what: &'static str) -> Result<u16, RccError> {
        let b = self.slice(offset, 2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&self, offset: usize, what: &'static str) -> Result<usize, RccError> {
        let b = self.slice(offset, 4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
}

struct Layout {
    tree: usize,
    data: usize,
    names: usize,
    node_size: usize,
}

/// Nodes visited so far, against how many the blob can hold: a tree whose directories share
/// children would otherwise be walked exponentially often.
struct Budget {
    visited: usize,
    limit: usize,
}

/// Every file in the resource blob `bytes`, in tree order.
pub fn read_rcc(bytes: &[u8]) -> Result<Vec<RccFile>, RccError> {
    let blob = Blob { bytes };
    if blob.slice(0, 4, "the magic")? != b"qres" {
        return Err(RccError::Magic);
    }
    let version = blob.u32(4, "the version")? as u32;
    if !(1..=3).contains(&version) {
        return Err(RccError::Version(version));
    }
    let layout = Layout {
        tree: blob.u32(8, "the tree offset")?,
        data: blob.u32(12, "the data offset")?,
        names: blob.u32(16, "the names offset")?,
        node_size: if version >= 2 { 22 } else { 14 },
    };
    let mut budget = Budget {
        visited: 0,
        limit: bytes.len() / layout.node_size + 1,
    };
    let mut files = Vec::new();
    walk(&blob, &layout, 0, "", 0, &mut budget, &mut files)?;
    Ok(files)
}

fn walk(
    blob: &Blob,
    layout: &Layout,
    index: usize,
    prefix: &str,
    depth: usize,
    budget: &mut Budget,
    out: &mut Vec<RccFile>,
) -> Result<(), RccError> {
    budget.visited += 1;
    if budget.visited > budget.limit {
        return Err(RccError::Tree(
            "more nodes visited than the file holds (directories share children)".into(),
        ));
    }
    if depth > MAX_DEPTH {
        return Err(RccError::Tree(format!(
            "directories nest deeper than {MAX_DEPTH} (does the tree loop?)"
        )));
    }
    let node = index
        .checked_mul(layout.node_size)
        .and_then(|o| o.checked_add(layout.tree))
        .ok_or_else(|| RccError::Tree(format!("node {index} is out of range")))?;
    blob.slice(node, layout.node_size, "a tree node")?;
    let flags = blob.u16(node + 4, "a node's flags")?;
    if index == 0 && flags & DIRECTORY == 0 {
        return Err(RccError::Tree("the root is not a folder".into()));
    }
    let path = if index == 0 {
        String::new()
    } else {
        format!(
            "{prefix}/{}",
            name(blob, layout, blob.u32(node, "a name")?)?
        )
    };
    if flags & DIRECTORY != 0 {
        let count = blob.u32(node + 6, "a child count")?;
        let first = blob.u32(node + 10, "a first child")?;
        for child in 0..count {
            let child = first
                .checked_add(child)
                .filter(|&c| c > index)
                .ok_or_else(|| {
                    RccError::Tree(format!("{path}/ lists a child at or before itself"))
                })?;
            walk(blob, layout, child, &path, depth + 1, budget, out)?;
        }
        return Ok(());
    }
    let at = layout
        .data
        .checked_add(blob.u32(node + 10, "a data offset")?)
        .ok_or_else(|| RccError::Tree(format!("{path}: data offset out of range")))?;
    let len = blob.u32(at, "a data length")?;
    let stored = blob.slice(at + 4, len, "file data")?;
    let data = if flags & ZSTD != 0 {
        return Err(RccError::Zstd(path));
    } else if flags & ZLIB != 0 {
        inflate(stored, &path)?
    } else {
        stored.to_vec()
    };
    out.push(RccFile { path, data });
    Ok(())
}

fn name(blob: &Blob, layout: &Layout, offset: usize) -> Result<String, RccError> {
    let at = layout
        .names
        .checked_add(offset)
        .ok_or(RccError::Name(offset))?;
    let units = blob.u16(at, "a name's length")? as usize;
    let raw = blob.slice(at + 6, units * 2, "a name")?;
    let utf16: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&utf16).map_err(|_| RccError::Name(at))
}

/// qCompress's format: the inflated length (u32, big-endian), then a zlib stream.
fn inflate(stored: &[u8], path: &str) -> Result<Vec<u8>, RccError> {
    let fail = |reason: String| RccError::Inflate {
        path: path.to_string(),
        reason,
    };
    let (head, stream) = stored
        .split_at_checked(4)
        .ok_or_else(|| fail("compressed data shorter than its length field".into()))?;
    let expected = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut out = Vec::with_capacity(expected.min(stored.len().saturating_mul(64)));
    flate2::read::ZlibDecoder::new(stream)
        .take(expected as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| fail(format!("zlib: {e}")))?;
    if out.len() != expected {
        return Err(fail(format!(
            "inflates to {} bytes, its header says {expected}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        crate::package_dir!().join("tests/fixtures/qt_resources")
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(fixtures().join(name)).unwrap()
    }

    /// Every file of the fixtures' source tree, as `rcc` was given it (`make_rcc.sh`).
    fn source_tree() -> Vec<(String, Vec<u8>)> {
        let tree = fixtures().join("tree");
        [
            "sounds/tone.txt",
            "random.bin",
            "pictures/clip-art/violoncelle-é.svg",
        ]
        .iter()
        .map(|p| {
            (
                format!("/fixture/tree/{p}"),
                std::fs::read(tree.join(p)).unwrap(),
            )
        })
        .collect()
    }

    #[test]
    fn every_format_version_gives_back_the_files_qt_packed() {
        let mut want = source_tree();
        want.sort();
        for name in ["v1.rcc", "v2.rcc", "v3.rcc"] {
            let mut got: Vec<(String, Vec<u8>)> = read_rcc(&fixture(name))
                .unwrap()
                .into_iter()
                .map(|f| (f.path, f.data))
                .collect();
            got.sort();
            assert_eq!(got, want, "{name}");
        }
        // The repeated text is stored compressed, so the inflating path was taken.
        let blob = fixture("v3.rcc");
        assert!(blob.len() < want.iter().map(|(_, d)| d.len()).sum::<usize>());
    }

    #[test]
    fn zstd_files_are_a_named_error() {
        let err = read_rcc(&fixture("zstd.rcc")).unwrap_err();
        assert!(
            matches!(&err, RccError::Zstd(p) if p.ends_with("tone.txt")),
            "{err}"
        );
    }

    #[test]
    fn bad_blobs_are_named_errors() {
        let good = fixture("v2.rcc");
        assert_eq!(
            read_rcc(b"qre"),
            Err(RccError::Truncated {
                what: "the magic",
                offset: 0,
                len: 3
            })
        );
        assert_eq!(
            read_rcc(b"PK\x03\x04 a zip file, say"),
            Err(RccError::Magic)
        );
        let mut v9 = good.clone();
        v9[4..8].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(read_rcc(&v9), Err(RccError::Version(9)));
        // Cut anywhere: an error, never a panic.
        for cut in 0..good.len() {
            assert!(read_rcc(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A tree offset past the end.
        let mut far = good.clone();
        far[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(read_rcc(&far), Err(RccError::Truncated { .. })));
        // A root that lists itself as its own child.
        let mut looped = good.clone();
        let tree = u32::from_be_bytes(good[8..12].try_into().unwrap()) as usize;
        looped[tree + 10..tree + 14].copy_from_slice(&0u32.to_be_bytes());
        assert!(
            matches!(read_rcc(&looped), Err(RccError::Tree(_))),
            "{:?}",
            read_rcc(&looped)
        );
        // A root that is a file (found by the fuzz target: it came out with an empty path).
        let mut flat = good.clone();
        flat[tree + 4..tree + 6].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            read_rcc(&flat),
            Err(RccError::Tree("the root is not a folder".into()))
        );
        // Every byte flipped in turn: files with a path from the root, or an error.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xA5;
            if let Ok(files) = read_rcc(&b) {
                assert!(files.iter().all(|f| f.path.starts_with('/')), "byte {i}");
            }
        }
        let crash = std::fs::read(fixtures().join("fuzz-root-file.rcc")).unwrap();
        assert!(matches!(read_rcc(&crash), Err(RccError::Tree(_))));
    }
}
