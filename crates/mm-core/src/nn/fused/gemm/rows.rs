//! Row-wise helpers of the linear layer: column sums (a bias gradient) and a row broadcast
//! (a bias), each over the pool.

use rayon::prelude::*;

use super::super::kernels::written;
use super::super::wide::widest;

/// Elements per rayon task of [`column_sums`] and [`broadcast_rows`] (smaller inputs run as
/// one task).
const ROW_TASK: usize = 1 << 15;
/// Matrices at least this wide have their column sums split by columns, not rows.
const WIDE_COLS: usize = 4096;
/// Columns per task of a split by columns.
const COLUMN_TASK: usize = 1024;

/// The column sums of a row-major `rows x cols` matrix: `out[c] = sum_r x[r, c]`, over both
/// cores (a bias gradient: one GEMV on the calling thread was 1% of a training step). The
/// blocks are fixed by the shape and their partial sums added in block order, so the result
/// is the same bits however rayon's workers steal them (docs/architecture.md, "Threads").
pub fn column_sums(x: &[f32], cols: usize) -> Vec<f32> {
    if cols == 0 {
        return Vec::new();
    }
    if cols >= WIDE_COLS {
        // Each task sums every row of its own columns: no partial sums to keep.
        let mut sums = vec![0.0f32; cols];
        sums.par_chunks_mut(COLUMN_TASK)
            .enumerate()
            .for_each(|(k, out)| {
                let start = k * COLUMN_TASK;
                widest(
                    #[inline(always)]
                    || {
                        for row in x.chunks_exact(cols) {
                            let row = &row[start..start + out.len()];
                            out.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
                        }
                    },
                );
            });
        return sums;
    }
    let rows_per_task = (ROW_TASK / cols).max(1);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(rows_per_task * cols)
        .map(|block| {
            let mut sums = vec![0.0f32; cols];
            widest(
                #[inline(always)]
                || {
                    for row in block.chunks_exact(cols) {
                        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
                    }
                },
            );
            sums
        })
        .collect();
    let mut sums = vec![0.0f32; cols];
    for partial in partials {
        sums.iter_mut().zip(partial).for_each(|(s, v)| *s += v);
    }
    sums
}

/// A row-major `rows x cols` buffer with `row` in every row (a bias broadcast), written once
/// over both cores.
pub fn broadcast_rows(row: &[f32], rows: usize) -> Vec<f32> {
    let cols = row.len();
    if cols == 0 {
        return Vec::new();
    }
    let rows_per_task = (ROW_TASK / cols).max(1);
    written(rows * cols, |out| {
        out.par_chunks_mut(rows_per_task * cols)
            .map(|block| {
                let mut wrote = 0;
                for dst in block.chunks_exact_mut(cols) {
                    dst.iter_mut().zip(row).for_each(|(d, &v)| {
                        d.write(v);
                    });
                    wrote += cols;
                }
                wrote
            })
            .sum()
    })
}
