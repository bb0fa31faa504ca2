//! Batches of products (attention's per-head products): split over the batch when it is
//! large, over each product when the products are.

use rayon::prelude::*;

use super::{
    BATCH_PARALLEL_MACS, PARALLEL_MACS, View, matmul, matmul_with, splits_columns, write_product,
};

/// Whether a batch of `batch` products of `macs` multiply-adds each runs one product per task
/// (rather than one after another, each over the pool when large).
fn splits_batch(batch: usize, macs: usize) -> bool {
    batch > 1 && batch * macs >= BATCH_PARALLEL_MACS && (batch >= 4 || macs < PARALLEL_MACS)
}

/// `batch` products `out[i] = a(i) b(i)`, each `m x n` and row-major, one after another in
/// `out`: split over the batch when it is large, over each product when the products are.
pub fn batched<'a>(
    batch: usize,
    a: impl Fn(usize) -> View<'a> + Sync,
    b: impl Fn(usize) -> View<'a> + Sync,
    out: &mut [f32],
) {
    if batch == 0 {
        return;
    }
    let size = out.len() / batch;
    assert_eq!(
        size * batch,
        out.len(),
        "the output splits into {batch} products"
    );
    let first = a(0);
    if splits_batch(batch, first.rows * first.cols * b(0).cols) {
        out.par_chunks_mut(size.max(1))
            .enumerate()
            .for_each(|(i, o)| {
                let (a, b) = (a(i), b(i));
                assert_eq!(o.len(), a.rows * b.cols, "product {i} of the batch");
                matmul_with(a, b, o, b.cols, false, gemm::Parallelism::None)
            });
    } else {
        for (i, o) in out.chunks_mut(size.max(1)).enumerate() {
            matmul(a(i), b(i), o, false);
        }
    }
}

/// `batch` products `a(i) b(i)`, each `rows x cols`, one after another in a new buffer that
/// the kernel writes once (as [`product`]); split over the batch as [`batched`] does.
///
/// # Panics
/// When a product is not `rows x cols` or its inner dimensions differ.
pub fn batched_product<'a>(
    batch: usize,
    a: impl Fn(usize) -> View<'a> + Sync,
    b: impl Fn(usize) -> View<'a> + Sync,
    [rows, cols]: [usize; 2],
) -> Vec<f32> {
    let size = rows * cols;
    let len = batch * size;
    if batch == 0 || size == 0 || a(0).cols == 0 {
        let mut out = vec![0.0f32; len];
        batched(batch, a, b, &mut out);
        return out;
    }
    let first = a(0);
    let macs = first.rows * first.cols * b(0).cols;
    let split_batch = splits_batch(batch, macs);
    if !split_batch && splits_columns(first, b(0)) {
        // Few-row products run one after another keep `matmul`'s split by columns.
        let mut out = vec![0.0f32; len];
        batched(batch, a, b, &mut out);
        return out;
    }
    let parallel = if !split_batch && macs >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let write = |i: usize, block: &mut [std::mem::MaybeUninit<f32>]| {
        let (a, b) = (a(i), b(i));
        assert_eq!(
            (a.rows, b.cols),
            (rows, cols),
            "product {i} of the batch is not {rows}x{cols}"
        );
        assert!(
            a.cols > 0,
            "product {i} of the batch has an empty inner dimension"
        );
        // SAFETY: `block` is `size = rows * cols` writable elements of the fresh buffer, no
        // other task's; without accumulation the kernel writes every one and reads none.
        #[allow(unsafe_code)]
        unsafe {
            write_product(a, b, block.as_mut_ptr().cast(), size, cols, false, parallel)
        }
    };
    let spare = &mut out.spare_capacity_mut()[..len];
    if split_batch {
        spare
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, o)| write(i, o));
    } else {
        spare
            .chunks_mut(size)
            .enumerate()
            .for_each(|(i, o)| write(i, o));
    }
    // SAFETY: every one of the `batch` blocks of `size` elements was written above (a block
    // that could not be would have panicked first).
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len)
    };
    out
}
