//! [`UsearchIndex`]: approximate inner-product search on the HNSW graph of
//! [usearch](https://docs.rs/usearch), a maintained library (C++ with SIMD kernels, bound
//! through `cxx`), f32 vectors, built and searched on all cores.
//!
//! It sits beside our own [`crate::HnswIndex`] for users who want a graph from a library
//! maintained outside this project. Its graph section in an index file is usearch's own
//! serialization (`save_to_buffer`), which the library's other bindings read. On 100k random
//! 512-d vectors it answers at 0.34-0.54x of FAISS's rate at equal parameters, ours at
//! 0.93-1.33x (`cargo xtask bench index`, docs/serving.md).

use std::ops::Range;

use rayon::prelude::*;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::index::{Hit, HnswParams, IndexError, IndexKind, VectorIndex, check_rows};

/// Approximate inner-product search on a usearch graph.
pub struct UsearchIndex {
    dim: usize,
    params: HnswParams,
    index: Index,
}

fn usearch_err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> IndexError + '_ {
    move |e| IndexError::Hnsw(format!("usearch {what}: {e}"))
}

impl UsearchIndex {
    /// An empty graph of `dim`-wide vectors; `M` is usearch's connectivity (level 0 holds `2M`).
    pub fn new(dim: usize, params: HnswParams) -> Result<Self, IndexError> {
        if dim == 0 || params.m < 2 || params.ef_construction == 0 || params.ef_search == 0 {
            return Err(IndexError::Invalid(format!(
                "usearch HNSW needs dim >= 1, M >= 2 and ef >= 1, got dim {dim}, {params:?}"
            )));
        }
        let options = IndexOptions {
            dimensions: dim,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: params.m,
            expansion_add: params.ef_construction,
            expansion_search: params.ef_search,
            multi: false,
        };
        let index = Index::new(&options).map_err(usearch_err("create"))?;
        Ok(Self { dim, params, index })
    }

    /// Restores a graph written by [`VectorIndex::graph_bytes`], checking that it is an
    /// inner-product graph of `count` f32 vectors of width `dim`.
    ///
    /// usearch checks the buffer's header and lengths; the lists inside are trusted once the
    /// index file's checksum has passed (usearch offers no check of them).
    pub fn from_graph(
        dim: usize,
        params: HnswParams,
        bytes: &[u8],
        count: usize,
    ) -> Result<Self, IndexError> {
        let meta = Index::metadata_from_buffer(bytes).map_err(usearch_err("graph header"))?;
        let found = (meta.dimensions, meta.metric, meta.quantization, meta.multi);
        if found != (dim as u64, MetricKind::IP, ScalarKind::F32, false) {
            return Err(IndexError::Hnsw(format!(
                "usearch graph holds {}-d {:?} {:?} vectors (multi {}), expected {dim}-d IP F32",
                meta.dimensions, meta.metric, meta.quantization, meta.multi
            )));
        }
        if meta.count_present != count as u64 || meta.count_deleted != 0 {
            return Err(IndexError::Hnsw(format!(
                "usearch graph holds {} vectors ({} deleted), the file header says {count}",
                meta.count_present, meta.count_deleted
            )));
        }
        let this = Self::new(dim, params)?;
        this.index
            .load_from_buffer(bytes)
            .map_err(usearch_err("graph"))?;
        // Loading restores the build-time expansion; the search one is ours to set.
        this.index.change_expansion_search(params.ef_search);
        if this.index.size() != count || this.index.connectivity() != params.m {
            return Err(IndexError::Hnsw(format!(
                "usearch graph holds {} vectors of connectivity {}, the file header says {count} \
                 and M {}",
                this.index.size(),
                this.index.connectivity(),
                params.m
            )));
        }
        Ok(this)
    }

    /// Whether `bytes` start with a usearch graph header.
    pub fn is_usearch_graph(bytes: &[u8]) -> bool {
        Index::metadata_from_buffer(bytes).is_ok()
    }

    /// Changes the search-time candidate list size (`efSearch`).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
        self.index.change_expansion_search(self.params.ef_search);
    }

    /// The SIMD kernels usearch picked for this CPU (`serial` when none).
    pub fn hardware_acceleration(&self) -> String {
        self.index.hardware_acceleration()
    }
}

impl VectorIndex for UsearchIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Usearch(self.params)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.index.size()
    }

    fn add(&mut self, vectors: &[f32]) -> Result<Range<u64>, IndexError> {
        let n = check_rows(vectors, self.dim)?;
        let start = self.index.size() as u64;
        // One search context per rayon worker (the calling thread is one of them or waits).
        let threads = rayon::current_num_threads();
        self.index
            .reserve_capacity_and_threads(start as usize + n, threads)
            .map_err(usearch_err("reserve"))?;
        vectors
            .par_chunks(self.dim)
            .enumerate()
            .try_for_each(|(i, v)| {
                self.index
                    .add(start + i as u64, v)
                    .map_err(usearch_err("add"))
            })?;
        Ok(start..start + n as u64)
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        if k == 0 {
            return Err(IndexError::ZeroK);
        }
        let one = |q: &[f32]| -> Result<Vec<Hit>, IndexError> {
            let found = self.index.search(q, k).map_err(usearch_err("search"))?;
            // usearch's IP distance is 1 - <q, v>.
            Ok(found
                .keys
                .iter()
                .zip(&found.distances)
                .map(|(&id, &d)| Hit { id, score: 1.0 - d })
                .collect())
        };
        if check_rows(queries, self.dim)? == 1 {
            return Ok(vec![one(queries)?]);
        }
        queries.par_chunks(self.dim).map(one).collect()
    }

    fn export(&self) -> Result<Vec<f32>, IndexError> {
        let mut out = vec![0.0f32; self.len() * self.dim];
        for (id, row) in out.chunks_mut(self.dim).enumerate() {
            self.index
                .get(id as u64, row)
                .map_err(usearch_err("export"))?;
        }
        Ok(out)
    }

    fn graph_bytes(&self) -> Result<Option<Vec<u8>>, IndexError> {
        let mut buffer = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut buffer)
            .map_err(usearch_err("save"))?;
        Ok(Some(buffer))
    }

    fn memory_bytes(&self) -> usize {
        self.index.memory_usage()
    }
}
