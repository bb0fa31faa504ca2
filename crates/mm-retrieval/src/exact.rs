//! [`ExactIndex`]: exhaustive search, a matrix product on the device and a top-k on the host.
//!
//! Vectors live on the device in row tiles of at most [`TILE`] vectors (`[n_i, dim]`), so
//! adding never copies more than one partly filled tile. A query batch is multiplied with one
//! block of [`BATCH_BLOCK`] rows at a time, up to 1024 queries at once, so each block is read
//! from memory once per batch and its scores are still in cache when the host scans them;
//! each query keeps its `k` best in a threshold-gated buffer. Blocks run in parallel.

use std::ops::Range;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use crate::index::{Hit, IndexError, IndexKind, TopK, VectorIndex, check_rows};

/// Most vectors in one device tile.
pub const TILE: usize = 16_384;

/// Rows of a tile multiplied at once when many queries are searched: 1024 queries x 2048
/// rows of scores (8 MiB) stay in cache until the top-k scan reads them (at 1M vectors this
/// ran 1.25x faster than whole 16k-row tiles on a 2-core EPYC).
pub const BATCH_BLOCK: usize = 2048;

/// Up to this many queries search whole tiles (single queries: fewer, larger products).
pub const FEW_QUERIES: usize = 16;

/// Most scores of one matrix product (8 MiB of f32): 1024 queries x one block.
pub const SCORE_SLICE: usize = 1 << 21;

/// Exhaustive inner-product search on any Burn backend.
pub struct ExactIndex<B: Backend> {
    dim: usize,
    len: usize,
    /// Row tiles `[n_i, dim]`, `n_i <= tile`, in id order.
    tiles: Vec<Tensor<B, 2>>,
    tile: usize,
    device: B::Device,
}

impl<B: Backend> ExactIndex<B> {
    /// An empty index of `dim`-wide vectors on `device`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            dim,
            len: 0,
            tiles: Vec::new(),
            tile: TILE,
            device: device.clone(),
        }
    }

    /// The same with tiles of at most `tile` vectors (smaller tiles: more, smaller matrix
    /// products; for tests and tuning).
    pub fn with_tile(mut self, tile: usize) -> Self {
        self.tile = tile.max(1);
        self
    }

    fn upload(&self, rows: &[f32]) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(rows.to_vec(), [rows.len() / self.dim, self.dim]),
            &self.device,
        )
    }
}

impl<B: Backend> VectorIndex for ExactIndex<B>
where
    B::Device: Send + Sync,
{
    fn kind(&self) -> IndexKind {
        IndexKind::Exact
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.len
    }

    fn add(&mut self, vectors: &[f32]) -> Result<Range<u64>, IndexError> {
        let n = check_rows(vectors, self.dim)?;
        let start = self.len as u64;
        let mut rest = vectors;
        // Top up a partly filled last tile first.
        if let Some(last) = self.tiles.last()
            && last.dims()[0] < self.tile
            && !rest.is_empty()
        {
            let take = (self.tile - last.dims()[0]).min(n) * self.dim;
            let topped = Tensor::cat(vec![last.clone(), self.upload(&rest[..take])], 0);
            *self.tiles.last_mut().expect("a last tile") = topped;
            rest = &rest[take..];
        }
        for chunk in rest.chunks(self.tile * self.dim) {
            let tile = self.upload(chunk);
            self.tiles.push(tile);
        }
        self.len += n;
        Ok(start..start + n as u64)
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        if k == 0 {
            return Err(IndexError::ZeroK);
        }
        let q = check_rows(queries, self.dim)?;
        // A batch multiplies blocks of a tile small enough that its scores stay in cache; a
        // few queries take whole tiles (fewer, larger products).
        let block = if q > FEW_QUERIES {
            BATCH_BLOCK.min(self.tile)
        } else {
            self.tile
        };
        let rows_per_slice = (SCORE_SLICE / block).max(1);
        let slices: Vec<Tensor<B, 2>> = queries
            .chunks(rows_per_slice * self.dim)
            .map(|chunk| self.upload(chunk))
            .collect();
        // (tile, first row in it, rows, first id) of every block.
        let mut blocks = Vec::new();
        let mut id = 0u64;
        for tile in &self.tiles {
            let n = tile.dims()[0];
            for start in (0..n).step_by(block) {
                let rows = block.min(n - start);
                blocks.push((tile, start, rows, id + start as u64));
            }
            id += n as u64;
        }
        let fresh = || -> Vec<TopK> { (0..q).map(|_| TopK::new(k)).collect() };
        // Blocks in parallel (a backend's matrix product may use one core); each worker keeps
        // every query's top-k over the blocks it took, and the workers' lists are merged.
        let tops = blocks
            .par_iter()
            .fold(fresh, |mut tops, &(tile, start, rows, offset)| {
                let rows_of = if rows == tile.dims()[0] {
                    tile.clone()
                } else {
                    tile.clone().narrow(0, start, rows)
                };
                let columns = rows_of.transpose(); // [dim, rows], a view
                for (s, slice) in slices.iter().enumerate() {
                    let scores = slice
                        .clone()
                        .matmul(columns.clone())
                        .into_data()
                        .convert::<f32>()
                        .into_vec::<f32>()
                        .expect("f32 scores"); // [queries in slice, rows]
                    let first = s * rows_per_slice;
                    let count = scores.len() / rows;
                    for (top, row) in tops[first..first + count]
                        .iter_mut()
                        .zip(scores.chunks(rows))
                    {
                        scan(top, row, offset);
                    }
                }
                tops
            })
            .reduce(fresh, |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    y.into_sorted().into_iter().for_each(|h| x.push(h));
                }
                a
            });
        Ok(tops.into_iter().map(TopK::into_sorted).collect())
    }

    fn export(&self) -> Result<Vec<f32>, IndexError> {
        let mut out = Vec::with_capacity(self.len * self.dim);
        for tile in &self.tiles {
            out.extend(
                tile.clone()
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("f32 vectors"),
            );
        }
        Ok(out)
    }

    fn memory_bytes(&self) -> usize {
        self.len * self.dim * std::mem::size_of::<f32>()
    }
}

/// Offers one row of scores (ids from `offset`) to a top-k, skipping the many that cannot enter.
fn scan(top: &mut TopK, row: &[f32], offset: u64) {
    let mut threshold = top.threshold();
    for (j, &score) in row.iter().enumerate() {
        if score >= threshold {
            top.push(Hit {
                id: offset + j as u64,
                score,
            });
            threshold = top.threshold();
        }
    }
}
