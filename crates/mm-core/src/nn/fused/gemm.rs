//! Matrix products straight into a new `Vec<f32>`, for the fused ops on Flex.
//!
//! Flex's own matmul allocates its output as zeroed bytes and then copies them once more to
//! align the buffer (`FlexTensor::empty`), and a linear layer's bias is a second pass over
//! the output. Here the output is one fresh allocation that the GEMM kernel (the `gemm`
//! crate, the one Flex calls, or a system BLAS named by `MM_BLAS`: `gemm_blas`) writes or
//! accumulates into, and transposes are strides, never copies.

use rayon::prelude::*;

use super::kernels::written;
use super::wide::widest;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Column sums (bias gradients) are the same bits on every run, however rayon's workers
    /// steal the row blocks.
    #[test]
    fn column_sums_do_not_depend_on_work_stealing() {
        let (rows, cols) = (6000, 96);
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 3.0)
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let first = bits(pool.install(|| column_sums(&x, cols)));
        for _ in 0..40 {
            assert_eq!(bits(pool.install(|| column_sums(&x, cols))), first);
        }
        // Narrow and wide matrices (split by rows, and by columns) against a plain loop in f64.
        for (rows, cols) in [(700, 96), (3, 5000), (1, 1), (40, 4096 + 17)] {
            let x: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 3.0)
                .collect();
            let sums = pool.install(|| column_sums(&x, cols));
            assert_eq!(sums.len(), cols);
            for (c, &s) in sums.iter().enumerate() {
                let exact: f64 = (0..rows).map(|r| x[r * cols + c] as f64).sum();
                assert!((s as f64 - exact).abs() < 1e-3, "{rows}x{cols} column {c}");
            }
        }
    }

    /// The textbook triple loop, for comparison.
    pub(in crate::nn::fused) fn naive(a: View, b: View) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                out[r * b.cols + c] = (0..a.cols)
                    .map(|i| {
                        a.data[r * a.row_stride + i * a.col_stride]
                            * b.data[i * b.row_stride + c * b.col_stride]
                    })
                    .sum();
            }
        }
        out
    }

    /// `n` values of `sin(i * step)`.
    pub(in crate::nn::fused) fn ramp(n: usize, step: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * step).sin()).collect()
    }

    fn assert_close(x: &[f32], y: &[f32]) {
        assert_eq!(x.len(), y.len());
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "element {i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn products_with_transposed_views_match_the_triple_loop() {
        let (m, k, n) = (7, 5, 3);
        let a = ramp(m * k, 0.37);
        let b = ramp(k * n, 0.91);
        let (va, vb) = (View::row_major(&a, m, k), View::row_major(&b, k, n));
        let mut out = vec![0.0; m * n];
        matmul(va, vb, &mut out, false);
        assert_close(&out, &naive(va, vb));
        // (a^T)^T b with a stored transposed.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let vat = View::row_major(&at, k, m).t();
        matmul(vat, vb, &mut out, false);
        assert_close(&out, &naive(va, vb));
        // Accumulating adds to what is there.
        let mut acc = vec![1.0; m * n];
        matmul(va, vb, &mut acc, true);
        let expected: Vec<f32> = naive(va, vb).iter().map(|x| x + 1.0).collect();
        assert_close(&acc, &expected);
    }

    #[test]
    fn batches_sums_and_broadcasts_are_exact() {
        let (batch, m, k, n) = (6, 4, 3, 5);
        let a = ramp(batch * m * k, 0.13);
        let b = ramp(batch * k * n, 0.29);
        let mut out = vec![0.0; batch * m * n];
        let va = |i: usize| View::row_major(&a[i * m * k..], m, k);
        let vb = |i: usize| View::row_major(&b[i * k * n..], k, n);
        batched(batch, va, vb, &mut out);
        for i in 0..batch {
            assert_close(&out[i * m * n..(i + 1) * m * n], &naive(va(i), vb(i)));
        }
        let sums = column_sums(&a[..m * k], k);
        for (c, s) in sums.iter().enumerate() {
            let expected: f32 = (0..m).map(|r| a[r * k + c]).sum();
            assert!((s - expected).abs() < 1e-5);
        }
        let rows = broadcast_rows(&[1.0, 2.0, 3.0], 100);
        assert!(rows.chunks(3).all(|r| r == [1.0, 2.0, 3.0]));
    }

    #[test]
    fn column_sums_and_broadcasts_over_several_tasks_are_exact() {
        // 3,001 rows of 37: four tasks of 885 rows, the last one short.
        let (rows, cols) = (3001, 37);
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7) % 11) as f32 - 5.0)
            .collect();
        let sums = column_sums(&x, cols);
        for (c, s) in sums.iter().enumerate() {
            let expected: f32 = (0..rows).map(|r| x[r * cols + c]).sum();
            assert_eq!(*s, expected, "column {c}");
        }
        let row: Vec<f32> = (0..cols).map(|c| c as f32 * 0.5).collect();
        let out = broadcast_rows(&row, rows);
        assert_eq!(out.len(), rows * cols);
        assert!(out.chunks(cols).all(|r| r == row.as_slice()));
        assert!(column_sums(&[], 4) == vec![0.0; 4] && broadcast_rows(&[], 9).is_empty());
    }

    #[test]
    fn few_row_products_split_by_columns_match_the_single_call() {
        // 40 rows, 300 columns, `b` transposed: in 2 even blocks, and in 7 whose last is
        // narrower (43 columns each, 42 in the last).
        let (m, k, n) = (40, 640, 300);
        let a = ramp(m * k, 0.011);
        let bt = ramp(n * k, 0.017);
        let (va, vb) = (View::row_major(&a, m, k), View::row_major(&bt, n, k).t());
        for parts in [2, 7] {
            for accumulate in [false, true] {
                let start = ramp(m * n, 0.5);
                let mut split = start.clone();
                matmul_split_columns(va, vb, &mut split, accumulate, parts);
                let mut plain = start.clone();
                matmul_with(va, vb, &mut plain, n, accumulate, gemm::Parallelism::None);
                assert_close(&split, &plain);
                if !accumulate {
                    assert_close(&split, &naive(va, vb));
                }
            }
        }
        // The shape is one `matmul` sends down the split (over the threshold, few rows).
        assert!(m * k * n >= PARALLEL_MACS && m <= FEW_ROWS && n / MIN_SPLIT_COLS > 1);
    }

    #[test]
    fn fresh_buffers_are_written_whole_without_a_zero_fill() {
        // Sizes on every path: small, parallel, few rows split by columns, an empty inner
        // dimension, one row.
        for (m, k, n) in [
            (7, 5, 3),
            (200, 64, 300),
            (50, 768, 200),
            (3, 0, 4),
            (1, 9, 4),
        ] {
            // NaNs where the next buffer of this size is likely to be allocated: an element
            // the kernel did not write would show.
            drop(vec![f32::NAN; m * n]);
            let (a, b) = (ramp(m * k, 0.37), ramp(k * n, 0.91));
            let (va, vb) = (View::row_major(&a, m, k), View::row_major(&b, k, n));
            let got = product(va, vb);
            assert_eq!(got.len(), m * n);
            assert_close(&got, &naive(va, vb));
            // Transposed operands, as the linear backward passes them.
            let got = product(vb.t(), va.t());
            assert_close(&got, &naive(vb.t(), va.t()));
        }
        for (batch, m, k, n) in [
            (1, 6, 4, 5),
            (1, 50, 768, 200),
            (3, 40, 32, 40),
            (12, 24, 16, 24),
            (2, 0, 3, 4),
        ] {
            drop(vec![f32::NAN; batch * m * n]);
            let (a, b) = (ramp(batch * m * k, 0.21), ramp(batch * k * n, 0.53));
            let va = |i: usize| View::row_major(&a[i * m * k..], m, k);
            let vb = |i: usize| View::row_major(&b[i * k * n..], k, n);
            let got = batched_product(batch, va, vb, [m, n]);
            assert_eq!(got.len(), batch * m * n);
            for i in 0..batch {
                assert_close(&got[i * m * n..(i + 1) * m * n], &naive(va(i), vb(i)));
            }
        }
    }

    #[test]
    #[should_panic(expected = "is not 4x4")]
    fn a_batch_of_the_wrong_shape_is_refused_before_anything_is_exposed() {
        let a = ramp(12, 0.1);
        let b = ramp(15, 0.2);
        batched_product(
            1,
            |_| View::row_major(&a, 4, 3),
            |_| View::row_major(&b, 3, 5),
            [4, 4],
        );
    }

    #[test]
    #[should_panic(expected = "inner dimensions differ")]
    fn mismatched_shapes_are_refused() {
        let a = vec![0.0; 6];
        matmul(
            View::row_major(&a, 2, 3),
            View::row_major(&a, 2, 3),
            &mut [0.0; 9],
            false,
        );
    }
}
