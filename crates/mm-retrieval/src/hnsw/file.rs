//! The graph's bytes inside an index snapshot: a magic, the shape, each node's level, every
//! neighbour list (count then ids, fixed width) and the vectors, all little-endian. Reading
//! checks every count and id, so a damaged graph is an error, never a wild read.

use super::graph::{Entry, Graph, MAX_LEVEL};
use crate::index::IndexError;

const MAGIC: &[u8; 8] = b"MMHNSW01";
const NO_ENTRY: u64 = u64::MAX;

/// The graph's bytes.
pub(crate) fn write(g: &Graph) -> Vec<u8> {
    let n = g.len();
    let mut out = Vec::with_capacity(48 + n + n * (g.m0 + 1) * 4 + g.vectors.len() * 4);
    out.extend_from_slice(MAGIC);
    let entry = g.entry();
    for v in [
        g.dim as u64,
        g.m as u64,
        n as u64,
        entry.map_or(NO_ENTRY, |e| e.node as u64),
        entry.map_or(0, |e| e.level as u64),
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&g.levels);
    for node in 0..n as u32 {
        for slot in g.raw_lists(node) {
            out.extend_from_slice(&slot.to_le_bytes());
        }
    }
    for v in &g.vectors {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn bad(reason: impl Into<String>) -> IndexError {
    IndexError::Hnsw(format!("graph: {}", reason.into()))
}

/// Reads bytes from [`write`] into the empty graph `g` (whose `dim` and `m` they must match).
pub(crate) fn read(g: &mut Graph, bytes: &[u8]) -> Result<(), IndexError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(bad(
            "not an mm HNSW graph (bad magic; written by another version?)",
        ));
    }
    let (dim, m, n, entry_node, entry_level) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    if dim != g.dim as u64 || m != g.m as u64 {
        return Err(bad(format!(
            "dimension {dim} and M {m}, but the index header says {} and {}",
            g.dim, g.m
        )));
    }
    let n = usize::try_from(n).ok().filter(|&n| n <= u32::MAX as usize);
    let n = n.ok_or_else(|| bad("node count out of range"))?;
    let levels = r.take(n)?.to_vec();
    if levels.iter().any(|&l| l > MAX_LEVEL) {
        return Err(bad("a node level is out of range"));
    }
    let slots: usize = levels
        .iter()
        .map(|&l| g.m0 + 1 + l as usize * (g.m + 1))
        .sum();
    let lists: Vec<u32> = r
        .take(slots.checked_mul(4).ok_or_else(|| bad("size overflow"))?)?
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    check_lists(&lists, &levels, g.m, n)?;
    let vectors: Vec<f32> = r
        .take(
            n.checked_mul(g.dim * 4)
                .ok_or_else(|| bad("size overflow"))?,
        )?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if r.at != bytes.len() {
        return Err(bad(format!(
            "{} bytes left after the vectors",
            bytes.len() - r.at
        )));
    }
    if vectors.iter().any(|v| !v.is_finite()) {
        return Err(bad("a vector has a non-finite value"));
    }
    let top = levels.iter().copied().max();
    let entry = match (entry_node, top) {
        (NO_ENTRY, None) => None,
        (node, Some(top))
            if node < n as u64 && levels[node as usize] == top && entry_level == top as u64 =>
        {
            Some(Entry {
                node: node as u32,
                level: top,
            })
        }
        _ => return Err(bad("entry point does not match the levels")),
    };
    g.push(&vectors, &levels);
    g.set_raw_lists(&lists);
    *g.entry.lock().unwrap_or_else(|e| e.into_inner()) = entry;
    Ok(())
}

/// Every list's count within its width, and every id a node that reaches the list's level.
fn check_lists(lists: &[u32], levels: &[u8], m: usize, n: usize) -> Result<(), IndexError> {
    let mut at = 0;
    for (node, &level) in levels.iter().enumerate() {
        for l in 0..=level {
            let width = if l == 0 { 2 * m } else { m };
            let list = &lists[at..at + width + 1];
            let count = list[0] as usize;
            let stray = |&id: &u32| id as usize >= n || levels[id as usize] < l;
            if count > width || list[1..=count].iter().any(stray) {
                return Err(bad(format!("node {node} has a damaged neighbour list")));
            }
            at += width + 1;
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], IndexError> {
        let end = self.at.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| bad("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
}

#[cfg(test)]
mod tests {
    use crate::HnswIndex;
    use crate::index::{HnswParams, IndexError, VectorIndex};
    use mm_data::synth::vectors::random_unit_vectors;

    const DIM: usize = 8;
    const N: usize = 300;

    fn params() -> HnswParams {
        HnswParams {
            m: 4,
            ef_construction: 32,
            ef_search: 32,
        }
    }

    fn graph() -> Vec<u8> {
        let mut index = HnswIndex::new(DIM, params()).unwrap();
        index.add(&random_unit_vectors(N, DIM, 9)).unwrap();
        index.graph_bytes().unwrap().unwrap()
    }

    fn load(bytes: &[u8]) -> Result<HnswIndex, IndexError> {
        HnswIndex::from_graph(DIM, params(), bytes)
    }

    #[test]
    fn every_kind_of_damage_is_a_named_error() {
        let good = graph();
        assert!(load(&good).is_ok());
        let first_list = 48 + N; // header, then one level byte per node
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("bad magic", [b"XXHNSW01".as_slice(), &good[8..]].concat()),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("bytes left", [good.as_slice(), &[0]].concat()),
            ("damaged neighbour list", {
                let mut b = good.clone();
                b[first_list..first_list + 4].copy_from_slice(&100u32.to_le_bytes());
                b
            }),
            ("damaged neighbour list", {
                let mut b = good.clone();
                b[first_list..first_list + 4].copy_from_slice(&1u32.to_le_bytes());
                b[first_list + 4..first_list + 8].copy_from_slice(&(N as u32).to_le_bytes());
                b
            }),
            ("damaged neighbour list", {
                // The entry's level-1 list names a node that has no level 1.
                let mut b = good.clone();
                let levels = &good[48..48 + N];
                let entry = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize;
                assert!(levels[entry] >= 1, "the test graph has upper levels");
                let low = levels.iter().position(|&l| l == 0).unwrap() as u32;
                let slots = |l: u8| 2 * 4 + 1 + l as usize * (4 + 1);
                let at = first_list
                    + 4 * (levels[..entry].iter().map(|&l| slots(l)).sum::<usize>() + 2 * 4 + 1);
                b[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
                b[at + 4..at + 8].copy_from_slice(&low.to_le_bytes());
                b
            }),
            ("entry point", {
                let mut b = good.clone();
                b[32..40].copy_from_slice(&(N as u64).to_le_bytes());
                b
            }),
            ("level is out of range", {
                let mut b = good.clone();
                b[48] = 200;
                b
            }),
        ];
        for (what, bytes) in damaged {
            let err = load(&bytes)
                .err()
                .unwrap_or_else(|| panic!("{what} was accepted"));
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
        let other_dim = HnswIndex::from_graph(DIM + 1, params(), &good)
            .err()
            .unwrap();
        assert!(other_dim.to_string().contains("header says"), "{other_dim}");
    }
}
