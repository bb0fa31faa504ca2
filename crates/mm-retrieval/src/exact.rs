//! [`ExactIndex`]: exhaustive search, a matrix product on the device and a top-k on the host.
//!
//! Vectors live on the device in row tiles of at most [`TILE`] vectors (`[n_i, dim]`), so
//! adding never copies more than one partly filled tile. A query batch is multiplied with one
//! tile at a time, all queries at once (up to [`SCORE_SLICE`] scores), so each tile is read
//! from memory once per batch while it is in cache, as BLAS-backed flat indexes do; the scores
//! come back to the host where each query keeps its `k` best in a threshold-gated buffer,
//! queries in parallel.

use std::ops::Range;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use crate::index::{Hit, IndexError, IndexKind, TopK, VectorIndex, check_rows};

/// Most vectors in one device tile.
pub const TILE: usize = 16_384;

/// Most scores brought to the host at once (64 MiB of f32): 1024 queries x one tile.
pub const SCORE_SLICE: usize = 1 << 24;

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
        let rows_per_slice = (SCORE_SLICE / self.tile).max(1);
        let slices: Vec<Tensor<B, 2>> = queries
            .chunks(rows_per_slice * self.dim)
            .map(|chunk| self.upload(chunk))
            .collect();
        // The first id of each tile.
        let offsets: Vec<u64> = self
            .tiles
            .iter()
            .scan(0u64, |next, tile| {
                let first = *next;
                *next += tile.dims()[0] as u64;
                Some(first)
            })
            .collect();
        // Tiles in parallel (a backend's matrix product may use one core), each giving every
        // query its top-k within the tile; the partial lists are then merged.
        let tops = self
            .tiles
            .par_iter()
            .zip(offsets)
            .map(|(tile, offset)| {
                let n = tile.dims()[0];
                let columns = tile.clone().transpose(); // [dim, n], a view
                let mut tops: Vec<TopK> = (0..q).map(|_| TopK::new(k)).collect();
                for (s, slice) in slices.iter().enumerate() {
                    let scores = slice
                        .clone()
                        .matmul(columns.clone())
                        .into_data()
                        .convert::<f32>()
                        .into_vec::<f32>()
                        .expect("f32 scores"); // [rows, n]
                    let first = s * rows_per_slice;
                    let rows = scores.len() / n;
                    tops[first..first + rows]
                        .par_iter_mut()
                        .zip(scores.par_chunks(n))
                        .for_each(|(top, row)| scan(top, row, offset));
                }
                tops
            })
            .reduce(
                || (0..q).map(|_| TopK::new(k)).collect(),
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        y.into_sorted().into_iter().for_each(|h| x.push(h));
                    }
                    a
                },
            );
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
