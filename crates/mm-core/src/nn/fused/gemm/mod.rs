//! Matrix products straight into a new `Vec<f32>`, for the fused ops on Flex.
//!
//! Flex's own matmul allocates its output as zeroed bytes and then copies them once more to
//! align the buffer (`FlexTensor::empty`), and a linear layer's bias is a second pass over
//! the output. Here the output is one fresh allocation that the GEMM kernel (the `gemm`
//! crate, the one Flex calls, or a system BLAS named by `MM_BLAS`: `gemm_blas`) writes or
//! accumulates into, and transposes are strides, never copies.

use rayon::prelude::*;

mod batched;
mod rows;

#[cfg(test)]
use batched::batched;
pub use batched::batched_product;
pub use rows::{broadcast_rows, column_sums};

/// GEMMs with at least this many multiply-adds split over rayon's pool (Flex's threshold).
const PARALLEL_MACS: usize = 192 * 192 * 192;
/// A batch of GEMMs with at least this many multiply-adds in all runs one per task.
const BATCH_PARALLEL_MACS: usize = 128 * 128 * 128;
/// Parallel products with at most this many rows split their output columns over the pool
/// instead: the `gemm` crate splits few rows poorly (docs/performance.md, "A third CPU").
const FEW_ROWS: usize = 128;
/// The fewest output columns one task of a column split gets.
const MIN_SPLIT_COLS: usize = 64;

/// A strided view of an `f32` matrix: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_stride: usize,
    pub(super) col_stride: usize,
}

impl<'a> View<'a> {
    /// The row-major `rows x cols` matrix at the start of `data`.
    ///
    /// # Panics
    /// When `data` holds fewer than `rows * cols` elements.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "a {rows}x{cols} matrix needs {} elements, the slice has {}",
            rows * cols,
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The `rows x cols` matrix at the start of `data` whose rows start `row_stride` apart (a
    /// block of a wider row-major matrix).
    ///
    /// # Panics
    /// When `row_stride < cols` or `data` ends before the block's last element.
    pub fn rows_apart(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            row_stride >= cols,
            "rows {row_stride} apart cannot hold {cols} columns"
        );
        let needed = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * row_stride + cols
        };
        assert!(
            data.len() >= needed,
            "a {rows}x{cols} block with rows {row_stride} apart needs {needed} elements, the slice has {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose, as strides over the same elements.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `out = a b` (or `out += a b` when `accumulate`), `out` row-major `a.rows x b.cols`.
///
/// # Panics
/// When the inner dimensions or `out`'s length do not match.
pub fn matmul(a: View, b: View, out: &mut [f32], accumulate: bool) {
    assert_row_major_output(a, b, out);
    if splits_columns(a, b) {
        matmul_split_columns(a, b, out, accumulate, column_parts(b));
        return;
    }
    matmul_block(a, b, out, b.cols, accumulate, true);
}

/// Panics unless `a b` is defined and `out` holds exactly its row-major `a.rows x b.cols`
/// product (the inner dimensions are checked first, as [`matmul_block`] checks them).
fn assert_row_major_output(a: View, b: View, out: &[f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        b.rows, k,
        "inner dimensions differ: {m}x{k} times {}x{n}",
        b.rows
    );
    assert_eq!(out.len(), m * n, "the output of a {m}x{n} product");
}

/// [`matmul`] on the calling thread alone: for callers that already split their work over
/// rayon's pool (one convolution sample per task).
pub fn matmul_serial(a: View, b: View, out: &mut [f32], accumulate: bool) {
    assert_row_major_output(a, b, out);
    matmul_block(a, b, out, b.cols, accumulate, false);
}

/// `a b` written (or added, when `accumulate`) into the block at the start of `out` whose
/// rows start `out_stride` apart; over rayon's pool when `parallel` and the product is large.
pub fn matmul_block(
    a: View,
    b: View,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
    parallel: bool,
) {
    let parallel = if parallel && a.rows * a.cols * b.cols >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    matmul_with(a, b, out, out_stride, accumulate, parallel);
}

/// [`matmul`] with `b`'s columns (and `out`'s) cut into `parts` blocks, one single-threaded
/// product per rayon task, each written straight into its columns of `out`.
fn matmul_split_columns(a: View, b: View, out: &mut [f32], accumulate: bool, parts: usize) {
    assert_row_major_output(a, b, out);
    // SAFETY: `out` is the `a.rows * b.cols` initialized elements of the row-major output,
    // borrowed mutably, so no view aliases it.
    #[allow(unsafe_code)]
    unsafe {
        write_split_columns(a, b, out.as_mut_ptr(), accumulate, parts)
    }
}

/// `a b` written (or added, when `accumulate`) into the row-major `a.rows x b.cols` output at
/// `out`, its columns cut into `parts` blocks, one single-threaded product per rayon task.
/// Each task writes its block of columns in place (rows `b.cols` apart), so nothing is copied
/// and, without `accumulate`, every element is written and none read.
///
/// # Safety
/// `out` must be valid for writes of `a.rows * b.cols` elements, not aliased by `a` or `b`,
/// and initialized when `accumulate`.
#[allow(unsafe_code)]
unsafe fn write_split_columns(a: View, b: View, out: *mut f32, accumulate: bool, parts: usize) {
    let (m, n) = (a.rows, b.cols);
    check_output(a, b, m * n, n);
    if m == 0 || n == 0 {
        return;
    }
    let width = n.div_ceil(parts.max(1));
    let out = Out(out);
    (0..n)
        .into_par_iter()
        .step_by(width)
        .for_each(move |first| {
            let out = out;
            let cols = width.min(n - first);
            // Columns `first..first + cols` of `b`: the offset lies inside the slice when `b`
            // has rows, and with none the kernel reads nothing.
            let block = View {
                data: &b.data[(first * b.col_stride).min(b.data.len())..],
                cols,
                ..b
            };
            // SAFETY: this task's block is columns `first..first + cols` of the `m` rows `n`
            // apart, which end inside the caller's `m * n` elements (`(m - 1) * n + first + cols
            // <= m * n`) and which no other task writes; `write_product` checks the extents.
            unsafe {
                write_product(
                    a,
                    block,
                    out.0.add(first),
                    m * n - first,
                    n,
                    accumulate,
                    gemm::Parallelism::None,
                )
            }
        });
}

/// A pointer to an output that rayon's tasks share, each writing its own disjoint block.
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: every user hands each task a block of the output that no other task touches.
#[allow(unsafe_code)]
unsafe impl Send for Out {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Out {}

/// [`matmul`] with the kernel's own threading chosen by the caller.
fn matmul_with(
    a: View,
    b: View,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
    parallel: gemm::Parallelism,
) {
    if a.cols == 0 {
        check_output(a, b, out.len(), out_stride);
        if !accumulate && a.rows > 0 && b.cols > 0 {
            for row in out.chunks_mut(out_stride).take(a.rows) {
                row[..b.cols].fill(0.0);
            }
        }
        return;
    }
    let len = out.len();
    // SAFETY: `out` is `len` initialized elements, so reading them (when accumulating) and
    // writing them is sound.
    #[allow(unsafe_code)]
    unsafe {
        write_product(
            a,
            b,
            out.as_mut_ptr(),
            len,
            out_stride,
            accumulate,
            parallel,
        )
    }
}

/// Panics unless `a b` is defined and its `rows x cols` block, rows `out_stride` apart, fits in
/// `len` elements.
fn check_output(a: View, b: View, len: usize, out_stride: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        b.rows, k,
        "inner dimensions differ: {m}x{k} times {}x{n}",
        b.rows
    );
    if m == 0 || n == 0 {
        return;
    }
    // The output block's rows are `out_stride >= n` apart and its last element is in `out`.
    assert!(
        out_stride >= n,
        "output rows {out_stride} apart cannot hold {n} columns"
    );
    assert!(
        (m - 1) * out_stride + n <= len,
        "the output of a {m}x{n} product with rows {out_stride} apart needs {} elements, the slice has {len}",
        (m - 1) * out_stride + n,
    );
}

/// `a b` written (or added, when `accumulate`) into the block at `out` (`len` elements) whose
/// rows start `out_stride` apart. Without `accumulate` the kernel reads nothing of `out` and
/// writes every element of the block; with it, it reads them first.
///
/// Where `gemm::gemm`, which takes raw pointers and strides, is called: the asserts before it
/// prove every access in bounds.
///
/// # Safety
/// `out` must be valid for writes of `len` elements, not aliased by `a` or `b`; when
/// `accumulate`, the block's elements must be initialized.
#[allow(unsafe_code)]
unsafe fn write_product(
    a: View,
    b: View,
    out: *mut f32,
    len: usize,
    out_stride: usize,
    accumulate: bool,
    parallel: gemm::Parallelism,
) {
    check_output(a, b, len, out_stride);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    // Each view's last element lies inside its slice, so every element the kernel reads does
    // (an empty inner dimension reads nothing: the kernel then writes zeros or leaves `out`).
    if k > 0 {
        for v in [a, b] {
            let last = (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
            assert!(last < v.data.len(), "a strided view reaches past its slice");
        }
    }
    let threaded = !matches!(parallel, gemm::Parallelism::None);
    // SAFETY: as for `gemm::gemm` below.
    if unsafe { super::gemm_blas::write_product(a, b, out, out_stride, accumulate, threaded) } {
        return;
    }
    // SAFETY: the asserts above keep every read inside `a.data` and `b.data` and every write
    // inside the `len` elements at `out` (m rows of n, `out_stride` apart); the caller
    // guarantees `out` is writable, unaliased, and initialized where it is read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            out_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallel,
        );
    }
}

/// Whether [`matmul`] would cut this product's columns over the pool (never with a system
/// BLAS, whose products split over the pool without copies, `gemm_blas`).
fn splits_columns(a: View, b: View) -> bool {
    a.rows * a.cols * b.cols >= PARALLEL_MACS
        && a.rows <= FEW_ROWS
        && column_parts(b) > 1
        && b.rows == a.cols
        && !super::gemm_blas::takes(a, b)
}

/// How many blocks of columns [`matmul`] cuts `b` into when it splits by columns.
fn column_parts(b: View) -> usize {
    rayon::current_num_threads().min(b.cols / MIN_SPLIT_COLS)
}

/// `a b` in a new row-major `a.rows x b.cols` buffer. The kernel writes the buffer once; it is
/// not zero-filled first (a zero fill was a twentieth of a training step, docs/performance.md).
pub fn product(a: View, b: View) -> Vec<f32> {
    let len = a.rows * b.cols;
    if a.cols == 0 || len == 0 {
        let mut out = vec![0.0f32; len];
        matmul(a, b, &mut out, false);
        return out;
    }
    if splits_columns(a, b) {
        let mut out: Vec<f32> = Vec::with_capacity(len);
        // SAFETY: `out` has room for `len` elements and is fresh; without accumulation the
        // tasks read none of them and write all of them, or panic before `set_len`.
        #[allow(unsafe_code)]
        unsafe {
            write_split_columns(a, b, out.as_mut_ptr(), false, column_parts(b));
            out.set_len(len);
        }
        return out;
    }
    let parallel = if a.rows * a.cols * b.cols >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let mut out: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `out` has room for `len = a.rows * b.cols` elements, is fresh (unaliased), and
    // without accumulation the kernel reads none of them and writes all of them (rows
    // `b.cols` apart), or `write_product` panics before `set_len` is reached.
    #[allow(unsafe_code)]
    unsafe {
        write_product(a, b, out.as_mut_ptr(), len, b.cols, false, parallel);
        out.set_len(len);
    }
    out
}

#[cfg(test)]
pub(super) mod tests;
