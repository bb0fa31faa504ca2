//! The graph's storage: vectors, levels and neighbour lists, laid out flat so a search touches
//! few cache lines. Neighbour lists are atomics so searches may read them while other threads
//! insert; each list is rewritten under its node's lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The top of the hierarchy: where every search starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The node at the highest level.
    pub node: u32,
    /// Its level.
    pub level: u8,
}

/// A list's count slot holds its length in the low 16 bits and, above them, how many of its
/// first ids are the selection heuristic's output in order (the rest were appended since; see
/// `build::link`). Lists are at most `2 * MAX_M` long, well within 16 bits.
const LENGTH_BITS: u32 = 0xFFFF;

/// Highest level a node may get (levels fall off geometrically; M 2 would need ~40 for 10^12).
pub(crate) const MAX_LEVEL: u8 = 31;

/// Vectors and links of an HNSW graph.
pub(crate) struct Graph {
    /// Width of each vector.
    pub dim: usize,
    /// Neighbours per node above level 0 (`M`).
    pub m: usize,
    /// Neighbours per node at level 0 (`2M`, as FAISS and hnswlib).
    pub m0: usize,
    /// Row-major vectors, `len * dim`.
    pub vectors: Vec<f32>,
    /// Each node's top level.
    pub levels: Vec<u8>,
    /// Level 0 lists, `m0 + 1` slots per node: the count (and selected prefix, see
    /// [`LENGTH_BITS`]), then the ids.
    links0: Vec<AtomicU32>,
    /// Levels 1.. of each node, `m + 1` slots per level (empty for level-0 nodes).
    upper: Vec<Box<[AtomicU32]>>,
    /// One lock per node, held while its lists are rewritten.
    locks: Vec<Mutex<()>>,
    /// Where searches start; `None` while empty.
    pub entry: Mutex<Option<Entry>>,
}

impl Graph {
    /// An empty graph.
    pub fn new(dim: usize, m: usize) -> Self {
        Self {
            dim,
            m,
            m0: 2 * m,
            vectors: Vec::new(),
            levels: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: Mutex::new(None),
        }
    }

    /// Number of nodes (inserted or being inserted).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// The vector of `node`.
    #[inline]
    pub fn vector(&self, node: u32) -> &[f32] {
        let at = node as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    /// Appends nodes with their vectors and levels, unlinked.
    pub fn push(&mut self, vectors: &[f32], levels: &[u8]) {
        self.vectors.extend_from_slice(vectors);
        self.levels.extend_from_slice(levels);
        let slots = self.links0.len() + levels.len() * (self.m0 + 1);
        self.links0.resize_with(slots, || AtomicU32::new(0));
        for &level in levels {
            let upper = (0..level as usize * (self.m + 1)).map(|_| AtomicU32::new(0));
            self.upper.push(upper.collect());
        }
        self.locks.resize_with(self.levels.len(), || Mutex::new(()));
    }

    /// The slots of `node`'s list at `level` (count first), and the list's capacity.
    #[inline]
    fn slots(&self, node: u32, level: u8) -> (&[AtomicU32], usize) {
        if level == 0 {
            let at = node as usize * (self.m0 + 1);
            (&self.links0[at..at + self.m0 + 1], self.m0)
        } else {
            let at = (level as usize - 1) * (self.m + 1);
            (&self.upper[node as usize][at..at + self.m + 1], self.m)
        }
    }

    /// The list capacity at `level`.
    pub fn capacity(&self, level: u8) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    /// Copies `node`'s neighbours at `level` into `out` (cleared first).
    #[inline]
    pub fn neighbours(&self, node: u32, level: u8, out: &mut Vec<u32>) {
        self.neighbours_selected(node, level, out);
    }

    /// Copies `node`'s neighbours at `level` into `out` (cleared first) and says how many of
    /// them, from the first, are the heuristic's output in order ([`Graph::set_neighbours`]).
    #[inline]
    pub fn neighbours_selected(&self, node: u32, level: u8, out: &mut Vec<u32>) -> usize {
        let (slots, cap) = self.slots(node, level);
        let word = slots[0].load(Relaxed);
        let count = ((word & LENGTH_BITS) as usize).min(cap);
        out.clear();
        out.extend(slots[1..=count].iter().map(|s| s.load(Relaxed)));
        ((word >> 16) as usize).min(count)
    }

    /// Replaces `node`'s neighbours at `level`; the caller holds `node`'s lock. The first
    /// `selected` ids are the selection heuristic's output, best first.
    pub fn set_neighbours(&self, node: u32, level: u8, ids: &[u32], selected: usize) {
        let (slots, cap) = self.slots(node, level);
        let n = ids.len().min(cap);
        for (slot, &id) in slots[1..=n].iter().zip(ids) {
            slot.store(id, Relaxed);
        }
        slots[0].store(n as u32 | (selected.min(n) as u32) << 16, Relaxed);
    }

    /// The lock guarding `node`'s lists.
    pub fn lock(&self, node: u32) -> std::sync::MutexGuard<'_, ()> {
        // A panic while a list was rewritten leaves a valid (if shorter) list: ignore poison.
        self.locks[node as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The current entry point.
    pub fn entry(&self) -> Option<Entry> {
        *self.entry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes held by vectors, lists and locks.
    pub fn memory_bytes(&self) -> usize {
        let upper: usize = self.upper.iter().map(|u| u.len() * 4 + 16).sum();
        self.vectors.capacity() * 4
            + self.levels.capacity()
            + self.links0.capacity() * 4
            + upper
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
    }

    /// Every list of `node`, level 0 first (for saving). Counts are written without the
    /// selected prefix: a loaded list is treated as unordered until it is next pruned.
    pub fn raw_lists(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        let m0 = self.m0 + 1;
        let at = node as usize * m0;
        let zero = self.links0[at..at + m0].iter();
        let upper = self.upper[node as usize].iter();
        let is_count = move |i: usize| i == 0 || (i >= m0 && (i - m0).is_multiple_of(self.m + 1));
        zero.chain(upper).enumerate().map(move |(i, s)| {
            let word = s.load(Relaxed);
            if is_count(i) {
                word & LENGTH_BITS
            } else {
                word
            }
        })
    }

    /// Restores lists saved by [`Graph::raw_lists`]; `lists` holds exactly the slots of
    /// every node in order (checked by the caller).
    pub fn set_raw_lists(&self, lists: &[u32]) {
        let mut it = lists.iter();
        for node in 0..self.len() {
            let at = node * (self.m0 + 1);
            let zero = self.links0[at..at + self.m0 + 1].iter();
            for slot in zero.chain(self.upper[node].iter()) {
                slot.store(*it.next().unwrap_or(&0), Relaxed);
            }
        }
    }
}
