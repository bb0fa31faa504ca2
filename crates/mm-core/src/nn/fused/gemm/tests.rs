//! Products against a plain triple loop, over strides, splits and batches.

use super::*;
use crate::nn::fused::determinism::{repeats_bit_for_bit, scrambled};

/// Column sums (bias gradients) are the same bits on every run, however rayon's workers
/// steal the row blocks.
#[test]
fn column_sums_do_not_depend_on_work_stealing() {
    let (rows, cols) = (6000, 96);
    let x: Vec<f32> = (0..rows * cols).map(scrambled).collect();
    repeats_bit_for_bit("column sums", || vec![column_sums(&x, cols)]);
    // Narrow and wide matrices (split by rows, and by columns) against a plain loop in f64.
    for (rows, cols) in [(700, 96), (3, 5000), (1, 1), (40, 4096 + 17)] {
        let x: Vec<f32> = (0..rows * cols).map(scrambled).collect();
        let sums = column_sums(&x, cols);
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
