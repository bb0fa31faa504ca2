//! [`ExactIndex`]: exhaustive search, a matrix product on the device and a top-k on the host.
//!
//! Vectors live on the device as column blocks (`[dim, n_block]`, one per `add`, merged when
//! they become many), so adding never copies what is already there. A query batch is one
//! matrix product per block; the score rows come back in slices of at most
//! [`SCORE_SLICE`] values and each row keeps its `k` best in a threshold-gated buffer, rows in
//! parallel.

use std::ops::Range;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use crate::index::{Hit, IndexError, IndexKind, TopK, VectorIndex, check_rows};

/// Most scores brought to the host at once (64 MiB of f32).
pub const SCORE_SLICE: usize = 1 << 24;

/// Blocks merged into one when there are more than this many.
const MAX_BLOCKS: usize = 32;

/// Exhaustive inner-product search on any Burn backend.
pub struct ExactIndex<B: Backend> {
    dim: usize,
    len: usize,
    /// Column blocks `[dim, n_i]`, in id order.
    blocks: Vec<Tensor<B, 2>>,
    device: B::Device,
}

impl<B: Backend> ExactIndex<B> {
    /// An empty index of `dim`-wide vectors on `device`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            dim,
            len: 0,
            blocks: Vec::new(),
            device: device.clone(),
        }
    }

    fn transposed(values: &[f32], rows: usize, dim: usize) -> Vec<f32> {
        let mut out = vec![0.0; values.len()];
        for r in 0..rows {
            for c in 0..dim {
                out[c * rows + r] = values[r * dim + c];
            }
        }
        out
    }

    /// Scores of `queries` (`[q, dim]` on the device) against one block, on the host.
    fn block_scores(&self, queries: Tensor<B, 2>, block: &Tensor<B, 2>) -> Vec<f32> {
        queries
            .matmul(block.clone())
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 scores")
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
        if n == 0 {
            return Ok(start..start);
        }
        let columns = Self::transposed(vectors, n, self.dim);
        self.blocks.push(Tensor::from_data(
            TensorData::new(columns, [self.dim, n]),
            &self.device,
        ));
        if self.blocks.len() > MAX_BLOCKS {
            let all = std::mem::take(&mut self.blocks);
            self.blocks.push(Tensor::cat(all, 1));
        }
        self.len += n;
        Ok(start..start + n as u64)
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>, IndexError> {
        if k == 0 {
            return Err(IndexError::ZeroK);
        }
        let q = check_rows(queries, self.dim)?;
        let mut tops: Vec<TopK> = (0..q).map(|_| TopK::new(k)).collect();
        let mut offset = 0u64;
        for block in &self.blocks {
            let n = block.dims()[1];
            let rows_per_slice = (SCORE_SLICE / n.max(1)).clamp(1, q.max(1));
            for (s, chunk) in queries.chunks(rows_per_slice * self.dim).enumerate() {
                let rows = chunk.len() / self.dim;
                let qt = Tensor::<B, 2>::from_data(
                    TensorData::new(chunk.to_vec(), [rows, self.dim]),
                    &self.device,
                );
                let scores = self.block_scores(qt, block);
                let first = s * rows_per_slice;
                tops[first..first + rows]
                    .par_iter_mut()
                    .zip(scores.par_chunks(n))
                    .for_each(|(top, row)| {
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
                    });
            }
            offset += n as u64;
        }
        Ok(tops.into_iter().map(TopK::into_sorted).collect())
    }

    fn export(&self) -> Result<Vec<f32>, IndexError> {
        let mut out = Vec::with_capacity(self.len * self.dim);
        for block in &self.blocks {
            let n = block.dims()[1];
            let columns = block
                .clone()
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32 vectors");
            out.extend(Self::transposed(&columns, self.dim, n));
        }
        Ok(out)
    }

    fn memory_bytes(&self) -> usize {
        self.len * self.dim * std::mem::size_of::<f32>()
    }
}
