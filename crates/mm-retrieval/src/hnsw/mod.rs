//! [`HnswIndex`]: approximate inner-product search on a hierarchical navigable small-world
//! graph (Malkov & Yashunin, 2018), built and searched on all cores.
//!
//! Our own implementation, laid out for speed: vectors in one row-major buffer, level-0 lists
//! (`2M` neighbours) in one flat array, inner products on the CPU's vector units four rows at a
//! time, per-thread visited tags. `usearch` and `hnsw_rs` were measured first and ran at 0.6x
//! and 0.3x of FAISS's queries/s (docs/serving.md); usearch's graph stays available as
//! [`crate::UsearchIndex`].

mod build;
mod file;
mod graph;
mod search;

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::index::{Hit, HnswParams, IndexError, IndexKind, VectorIndex, check_rows};
use crate::simd::Dot;
use graph::Graph;
use search::{Cand, Scratch, greedy, search_level};

/// Approximate inner-product search.
pub struct HnswIndex {
    params: HnswParams,
    graph: Graph,
    dot: Dot,
    /// Serializes insertions of nodes that rise above the entry level.
    top: Mutex<()>,
    /// Buffers of finished searches, reused by the next ones.
    pool: Mutex<Vec<Scratch>>,
}

/// Largest `M` accepted (lists are `2M` wide at level 0).
const MAX_M: usize = 512;

impl HnswIndex {
    /// An empty graph of `dim`-wide vectors.
    pub fn new(dim: usize, params: HnswParams) -> Result<Self, IndexError> {
        if dim == 0
            || !(2..=MAX_M).contains(&params.m)
            || params.ef_construction == 0
            || params.ef_search == 0
        {
            return Err(IndexError::Invalid(format!(
                "HNSW needs dim >= 1, 2 <= M <= {MAX_M} and ef >= 1, got dim {dim}, {params:?}"
            )));
        }
        Ok(Self {
            params,
            graph: Graph::new(dim, params.m),
            dot: Dot::new(),
            top: Mutex::new(()),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// Restores a graph written by [`VectorIndex::graph_bytes`]; every list is checked.
    pub fn from_graph(dim: usize, params: HnswParams, bytes: &[u8]) -> Result<Self, IndexError> {
        let mut this = Self::new(dim, params)?;
        file::read(&mut this.graph, bytes)?;
        Ok(this)
    }

    /// Changes the search-time candidate list size (`efSearch`).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
    }

    /// Buffers for one thread's work, back in the pool when dropped.
    fn lease(&self) -> Lease<'_> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let scratch = pool.pop().unwrap_or_default();
        Lease {
            pool: &self.pool,
            scratch,
        }
    }

    /// The `k` nearest nodes of one query.
    fn search_one(&self, q: &[f32], k: usize, s: &mut Scratch) -> Vec<Hit> {
        let g = &self.graph;
        let Some(entry) = g.entry() else {
            return Vec::new();
        };
        let mut best = Cand {
            sim: self.dot.one(q, g.vector(entry.node)),
            id: entry.node,
        };
        for level in (1..=entry.level).rev() {
            best = greedy(g, &self.dot, q, best, level, s);
        }
        let ef = self.params.ef_search.max(k);
        let found = search_level(g, &self.dot, q, &[best], ef, 0, s);
        found
            .iter()
            .take(k)
            .map(|c| Hit {
                id: c.id as u64,
                score: c.sim,
            })
            .collect()
    }
}

impl VectorIndex for HnswIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Hnsw(self.params)
    }

    fn dim(&self) -> usize {
        self.graph.dim
    }

    fn len(&self) -> usize {
        self.graph.len()
    }

    fn add(&mut self, vectors: &[f32]) -> Result<Range<u64>, IndexError> {
        let n = check_rows(vectors, self.graph.dim)?;
        let start = self.graph.len();
        if start + n > u32::MAX as usize {
            return Err(IndexError::Invalid(format!(
                "HNSW holds at most {} vectors",
                u32::MAX
            )));
        }
        let levels: Vec<u8> = (start..start + n)
            .map(|id| build::level_of(id as u64, self.params.m))
            .collect();
        self.graph.push(vectors, &levels);
        let (g, dot, top, ef) = (
            &self.graph,
            &self.dot,
            &self.top,
            self.params.ef_construction,
        );
        (start..start + n).into_par_iter().for_each_init(
            || self.lease(),
            |lease, id| build::insert(g, dot, top, id as u32, ef, &mut lease.scratch),
        );
        Ok(start as u64..(start + n) as u64)
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        if k == 0 {
            return Err(IndexError::ZeroK);
        }
        check_rows(queries, self.graph.dim)?;
        if queries.len() == self.graph.dim {
            // One query: on this thread, no task to hand over.
            let mut lease = self.lease();
            return Ok(vec![self.search_one(queries, k, &mut lease.scratch)]);
        }
        Ok(queries
            .par_chunks(self.graph.dim)
            .map_init(
                || self.lease(),
                |lease, q| self.search_one(q, k, &mut lease.scratch),
            )
            .collect())
    }

    fn export(&self) -> Result<Vec<f32>, IndexError> {
        Ok(self.graph.vectors.clone())
    }

    fn graph_bytes(&self) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(Some(file::write(&self.graph)))
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
    }
}

/// One thread's [`Scratch`], taken from an index's pool.
struct Lease<'a> {
    pool: &'a Mutex<Vec<Scratch>>,
    scratch: Scratch,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < rayon::current_num_threads() + 1 {
            pool.push(std::mem::take(&mut self.scratch));
        }
    }
}
