//! The [`VectorIndex`] trait: vectors in, ids out; nearest neighbours by inner product.
//!
//! Embeddings are unit-normalized before they reach an index, so the inner product is the
//! cosine similarity. An index assigns dense ids (`0, 1, 2, ...` in insertion order); the
//! metadata of each id is kept beside it by [`crate::durable::DurableIndex`]. A distributed vector
//! database plugs in by implementing this trait.

use std::cmp::Ordering;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// One search result: an id and its inner product with the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The id the index assigned when the vector was added.
    pub id: u64,
    /// Inner product with the query (cosine similarity for unit vectors).
    pub score: f32,
}

/// HNSW graph parameters, named as FAISS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Neighbours per node (`M`).
    pub m: usize,
    /// Candidate list size while building (`efConstruction`).
    pub ef_construction: usize,
    /// Candidate list size while searching (`efSearch`).
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 32,
            ef_construction: 128,
            ef_search: 128,
        }
    }
}

/// Which implementation an index is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IndexKind {
    /// Exhaustive: a matrix product on the device and a top-k.
    Exact,
    /// Approximate: a hierarchical navigable small-world graph of our own ([`crate::HnswIndex`]).
    Hnsw(HnswParams),
    /// Approximate: the HNSW graph of the usearch library ([`crate::UsearchIndex`]).
    Usearch(HnswParams),
}

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Vectors or queries of the wrong width.
    #[error("expected vectors of dimension {expected}, got {got} values (not a multiple)")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The number of values given.
        got: usize,
    },
    /// A NaN or infinite value.
    #[error("vector {row} has a non-finite value")]
    NonFinite {
        /// The offending row of the input.
        row: usize,
    },
    /// `k` of zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// The index file or log is unusable.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HNSW graph is unusable (a damaged or foreign graph file).
    #[error("HNSW: {0}")]
    Hnsw(String),
    /// The request does not fit the index (metadata count, dimension of a new index...).
    #[error("{0}")]
    Invalid(String),
}

/// An embedding index searched by inner product.
pub trait VectorIndex: Send + Sync {
    /// The implementation and its parameters.
    fn kind(&self) -> IndexKind;

    /// The width of every vector.
    fn dim(&self) -> usize;

    /// Number of vectors.
    fn len(&self) -> usize;

    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `vectors` (row-major, `n * dim` values); returns the ids given, `len()..len() + n`.
    fn add(&mut self, vectors: &[f32]) -> Result<Range<u64>, IndexError>;

    /// The `k` best ids for each query (row-major, `q * dim` values), best first.
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>, IndexError>;

    /// The `k` best ids for one query, best first.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError> {
        Ok(self.search_batch(query, k)?.pop().unwrap_or_default())
    }

    /// Every vector, row-major in id order (for saving).
    fn export(&self) -> Result<Vec<f32>, IndexError>;

    /// The implementation's serialized state beyond the vectors (the HNSW graph), if any.
    fn graph_bytes(&self) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(None)
    }

    /// Bytes of memory the index holds.
    fn memory_bytes(&self) -> usize;
}

/// Checks that `values` is whole rows of `dim` finite values; returns the row count.
pub fn check_rows(values: &[f32], dim: usize) -> Result<usize, IndexError> {
    if dim == 0 || !values.len().is_multiple_of(dim) {
        return Err(IndexError::Dimension {
            expected: dim,
            got: values.len(),
        });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(IndexError::NonFinite { row: i / dim });
    }
    Ok(values.len() / dim)
}

/// Orders hits best first; equal scores by id, so results are deterministic.
pub fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}

/// A running top-k of one query: a small sorted buffer, cheap when most scores miss it.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    hits: Vec<Hit>, // best first, at most k
}

impl TopK {
    /// An empty top-`k`.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            hits: Vec::with_capacity(k + 1),
        }
    }

    /// The score a candidate must beat to enter.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.hits.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.hits[self.k - 1].score
        }
    }

    /// Offers one candidate.
    #[inline]
    pub fn push(&mut self, hit: Hit) {
        if self.hits.len() == self.k && best_first(&hit, &self.hits[self.k - 1]).is_ge() {
            return;
        }
        let at = self
            .hits
            .partition_point(|h| best_first(h, &hit) == Ordering::Less);
        self.hits.insert(at, hit);
        self.hits.truncate(self.k);
    }

    /// The hits, best first.
    pub fn into_sorted(self) -> Vec<Hit> {
        self.hits
    }
}
