//! Matrix products on the system BLAS named by `MM_BLAS` ([`crate::blas`]): on the library's
//! own threads where it takes a thread count per call (MKL), otherwise split over rayon's pool
//! here, each task one single-threaded `cblas_sgemm` into its own block of the output (rows, or
//! columns when the output is wider than tall).

use super::gemm::{Out, View};
use crate::blas::{self, Blas, Operand};
use rayon::prelude::*;

/// The fewest rows (or columns) one task of a split gets: a multiple of the AVX-512 width.
const MIN_PART: usize = 32;

/// The BLAS operand for a view.
fn operand(v: View) -> Operand {
    Operand {
        ptr: v.data.as_ptr(),
        rows: v.rows,
        cols: v.cols,
        row_stride: v.row_stride,
        col_stride: v.col_stride,
    }
}

/// Products with fewer multiply-adds stay on the `gemm` crate even with a system BLAS: at an
/// attention head's size (65 x 32 x 65) MKL's dispatch costs as much as the arithmetic, and
/// the `gemm` crate is as fast or faster there (docs/performance.md, "Seventh session").
const MIN_MACS: usize = 64 * 64 * 64;

/// Whether the system BLAS (when one is loaded) computes `a b`.
pub(super) fn takes(a: View, b: View) -> bool {
    a.rows * a.cols * b.cols >= MIN_MACS
        && blas::active().is_some()
        && Blas::accepts(&operand(a), &operand(b))
}

/// `a b` written (or added, when `accumulate`) into the block at `out` whose rows start
/// `out_stride` apart, on the system BLAS, over the pool when `threaded`; `false` (nothing
/// touched) when no BLAS is loaded or it does not take the operands.
///
/// # Safety
/// As [`Blas::sgemm`]: the views' extents lie inside their slices (checked by the caller),
/// `out` is writable (and initialized, when `accumulate`) at `a.rows` rows of `b.cols`
/// elements, `out_stride >= b.cols` apart, and aliases neither view.
#[allow(unsafe_code)]
pub(super) unsafe fn write_product(
    a: View,
    b: View,
    out: *mut f32,
    out_stride: usize,
    accumulate: bool,
    threaded: bool,
) -> bool {
    match blas::active() {
        Some(lib) if takes(a, b) => {
            // SAFETY: the caller's guarantees.
            unsafe { write_product_with(lib, a, b, out, out_stride, accumulate, threaded) };
            true
        }
        _ => false,
    }
}

/// [`write_product`] on `lib`, which takes the operands ([`Blas::accepts`], `a.cols > 0`).
///
/// # Safety
/// As [`write_product`].
#[allow(unsafe_code)]
unsafe fn write_product_with(
    lib: &Blas,
    a: View,
    b: View,
    out: *mut f32,
    out_stride: usize,
    accumulate: bool,
    threaded: bool,
) {
    let (m, n) = (a.rows, b.cols);
    let threads = if threaded {
        rayon::current_num_threads()
    } else {
        1
    };
    if lib.threads_per_call() {
        // SAFETY: the caller's guarantees are `sgemm`'s.
        let done = unsafe {
            lib.sgemm(
                &operand(a),
                &operand(b),
                out,
                out_stride,
                accumulate,
                threads,
            )
        };
        assert!(done, "the BLAS refused a product it accepts");
        return;
    }
    let by_rows = m >= n;
    let parts = threads.min((if by_rows { m } else { n }) / MIN_PART).max(1);
    if parts == 1 {
        // SAFETY: the caller's guarantees are `sgemm`'s.
        let done = unsafe { lib.sgemm(&operand(a), &operand(b), out, out_stride, accumulate, 1) };
        assert!(done, "the BLAS refused a product it accepts");
        return;
    }
    let whole = if by_rows { m } else { n };
    let width = whole
        .div_ceil(parts)
        .next_multiple_of(MIN_PART / 2)
        .min(whole);
    let out = Out(out);
    (0..whole)
        .into_par_iter()
        .step_by(width)
        .for_each(move |first| {
            let len = width.min(whole - first);
            let out = out;
            let (pa, pb, at) = if by_rows {
                // Rows `first..first + len` of `a` and of the output.
                let pa = View {
                    data: &a.data[first * a.row_stride..],
                    rows: len,
                    ..a
                };
                (pa, b, first * out_stride)
            } else {
                // Columns `first..first + len` of `b` and of the output.
                let pb = View {
                    data: &b.data[first * b.col_stride..],
                    cols: len,
                    ..b
                };
                (a, pb, first)
            };
            // SAFETY: the block starts inside the output (row `first < m` or column
            // `first < n`) and covers rows (columns) no other task covers; the sub-views'
            // first elements lie in their slices, and their extents inside the caller's.
            let done = unsafe {
                lib.sgemm(
                    &operand(pa),
                    &operand(pb),
                    out.0.add(at),
                    out_stride,
                    accumulate,
                    1,
                )
            };
            assert!(done, "the BLAS refused a block of a product it accepts");
        });
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::super::gemm::tests::{naive, ramp};
    use super::*;

    /// Debian's reference BLAS (`libblas3`, README's prerequisites): no threads of its own, so
    /// every split of this module runs.
    fn reference_blas() -> Blas {
        Blas::open("libblas.so.3").unwrap_or_else(|e| {
            panic!("{e}: the BLAS tests need Debian's libblas3 (README, prerequisites)")
        })
    }

    #[test]
    fn products_on_a_system_blas_match_the_triple_loop_in_every_layout_and_split() {
        let lib = reference_blas();
        assert!(
            !lib.threads_per_call(),
            "the reference BLAS has no thread count"
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // Tall (split by rows), wide (split by columns), too small to split, one row, one
        // column, an inner dimension of one.
        for (m, k, n) in [
            (150, 40, 70),
            (40, 60, 150),
            (20, 30, 20),
            (1, 50, 90),
            (90, 50, 1),
            (100, 1, 80),
        ] {
            let a = ramp(m * k, 0.37);
            let b = ramp(k * n, 0.91);
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let a_views = [View::row_major(&a, m, k), View::row_major(&at, k, m).t()];
            let b_views = [View::row_major(&b, k, n), View::row_major(&bt, n, k).t()];
            let expected = naive(a_views[0], b_views[0]);
            for (va, vb) in a_views
                .iter()
                .flat_map(|&va| b_views.iter().map(move |&vb| (va, vb)))
            {
                assert!(Blas::accepts(&operand(va), &operand(vb)));
                for threaded in [false, true] {
                    // Into a block of a wider output (rows 3 apart more than needed), added to
                    // what is there.
                    let stride = n + 3;
                    let mut out = vec![2.0f32; m * stride];
                    // Three threads, whatever the machine has: uneven splits.
                    pool.install(|| {
                        // SAFETY: `out` holds `m` rows `stride >= n` apart; the views are in
                        // bounds.
                        #[allow(unsafe_code)]
                        unsafe {
                            write_product_with(
                                &lib,
                                va,
                                vb,
                                out.as_mut_ptr(),
                                stride,
                                true,
                                threaded,
                            )
                        }
                    });
                    for r in 0..m {
                        for c in 0..stride {
                            let got = out[r * stride + c];
                            let want = if c < n {
                                expected[r * n + c] + 2.0
                            } else {
                                2.0
                            };
                            assert!(
                                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{m}x{k}x{n} threaded {threaded}, ({r}, {c}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_library_without_sgemm_or_a_missing_file_is_named() {
        let missing = Blas::open("/nonexistent/libnothing.so")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/nonexistent/libnothing.so"), "{missing}");
        // glibc's math library loads but is no BLAS.
        let no_sgemm = Blas::open("libm.so.6").unwrap_err().to_string();
        assert!(no_sgemm.contains("no cblas_sgemm"), "{no_sgemm}");
    }
}
