//! [`HnswIndex`]: approximate search on a hierarchical navigable small-world graph
//! ([usearch](https://docs.rs/usearch), f32 vectors, inner product), built and searched on all
//! cores.

use std::ops::Range;

use rayon::prelude::*;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::index::{Hit, HnswParams, IndexError, IndexKind, VectorIndex, check_rows};

/// Approximate inner-product search.
pub struct HnswIndex {
    dim: usize,
    params: HnswParams,
    index: Index,
}

fn hnsw_err(e: impl std::fmt::Display) -> IndexError {
    IndexError::Hnsw(e.to_string())
}

impl HnswIndex {
    /// An empty graph of `dim`-wide vectors.
    pub fn new(dim: usize, params: HnswParams) -> Result<Self, IndexError> {
        if dim == 0 || params.m < 2 || params.ef_construction == 0 || params.ef_search == 0 {
            return Err(IndexError::Invalid(format!(
                "HNSW needs dim >= 1, M >= 2 and ef >= 1, got dim {dim}, {params:?}"
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
        let index = Index::new(&options).map_err(hnsw_err)?;
        Ok(Self { dim, params, index })
    }

    /// Restores a graph written by [`VectorIndex::graph_bytes`].
    pub fn from_graph(dim: usize, params: HnswParams, bytes: &[u8]) -> Result<Self, IndexError> {
        let this = Self::new(dim, params)?;
        this.index.load_from_buffer(bytes).map_err(hnsw_err)?;
        // Loading restores the build-time expansion; the search one is ours to set.
        this.index.change_expansion_search(params.ef_search);
        if this.index.dimensions() != dim {
            return Err(IndexError::Invalid(format!(
                "HNSW graph has dimension {}, expected {dim}",
                this.index.dimensions()
            )));
        }
        Ok(this)
    }

    /// The SIMD kernels the distance computations use (`serial` when none).
    pub fn hardware_acceleration(&self) -> String {
        self.index.hardware_acceleration()
    }

    /// Changes the search-time candidate list size (`efSearch`).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.max(1);
        self.index.change_expansion_search(self.params.ef_search);
    }
}

impl VectorIndex for HnswIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Hnsw(self.params)
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
        let threads = rayon::current_num_threads();
        self.index
            .reserve_capacity_and_threads(start as usize + n, threads)
            .map_err(hnsw_err)?;
        vectors
            .par_chunks(self.dim)
            .enumerate()
            .try_for_each(|(i, v)| self.index.add(start + i as u64, v).map_err(hnsw_err))?;
        Ok(start..start + n as u64)
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        if k == 0 {
            return Err(IndexError::ZeroK);
        }
        check_rows(queries, self.dim)?;
        queries
            .par_chunks(self.dim)
            .map(|q| {
                let found = self.index.search(q, k).map_err(hnsw_err)?;
                Ok(found
                    .keys
                    .iter()
                    .zip(&found.distances)
                    .map(|(&id, &d)| Hit { id, score: 1.0 - d })
                    .collect())
            })
            .collect()
    }

    fn export(&self) -> Result<Vec<f32>, IndexError> {
        let mut out = vec![0.0f32; self.len() * self.dim];
        for (id, row) in out.chunks_mut(self.dim).enumerate() {
            self.index.get(id as u64, row).map_err(hnsw_err)?;
        }
        Ok(out)
    }

    fn graph_bytes(&self) -> Result<Option<Vec<u8>>, IndexError> {
        let mut buffer = vec![0u8; self.index.serialized_length()];
        self.index.save_to_buffer(&mut buffer).map_err(hnsw_err)?;
        Ok(Some(buffer))
    }

    fn memory_bytes(&self) -> usize {
        self.index.memory_usage()
    }
}
