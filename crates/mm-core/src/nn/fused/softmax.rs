//! Row-wise softmax of attention scores and its backward on contiguous `f32` slices: rows
//! spread over rayon's pool, the scale and an optional broadcast boolean mask applied in the
//! same pass, `exp` from [`super::kernels::exp`] so each row's loop vectorizes.

use rayon::prelude::*;

use super::kernels::{dot, exp, max, sum_by};
use super::wide::widest;

/// Rows per rayon task (each row is one query's scores over every key).
const ROWS: usize = 64;

/// A boolean attention mask (`true`: masked out) broadcast to `[batch, heads, q, kv]`: its
/// elements in their own contiguous shape, every axis of size 1 read with stride 0.
#[derive(Debug, Clone)]
pub struct Mask {
    data: Vec<bool>,
    strides: [usize; 4],
    /// The target shape `[batch, heads, q, kv]`.
    target: [usize; 4],
}

impl Mask {
    /// A mask of shape `dims` (each axis equal to `target`'s or 1) with its elements in
    /// row-major order; `None` when a dimension does not broadcast.
    pub fn new(data: Vec<bool>, dims: [usize; 4], target: [usize; 4]) -> Option<Self> {
        if dims.iter().product::<usize>() != data.len()
            || dims.iter().zip(target).any(|(&d, t)| d != t && d != 1)
        {
            return None;
        }
        let mut strides = [0; 4];
        let mut step = 1;
        for axis in (0..4).rev() {
            strides[axis] = if dims[axis] == 1 { 0 } else { step };
            step *= dims[axis];
        }
        Some(Self {
            data,
            strides,
            target,
        })
    }

    /// Whether key `j` of score row `row` (flat over `[batch, heads, q]`) is masked out.
    #[inline(always)]
    fn row(&self, row: usize) -> (usize, usize) {
        let [_, heads, q, _] = self.target;
        let (b, h, i) = (row / (heads * q), (row / q) % heads, row % q);
        let s = self.strides;
        (b * s[0] + h * s[1] + i * s[2], s[3])
    }
}

/// Each row of `scores` (`cols` wide) becomes `softmax(scale * row)`, masked keys at 0. A row
/// with every key masked becomes all zeros (its softmax is undefined).
pub fn softmax_rows(scores: &mut [f32], cols: usize, scale: f32, mask: Option<&Mask>) {
    if cols == 0 {
        return;
    }
    scores
        .par_chunks_mut(ROWS * cols)
        .enumerate()
        .for_each(|(chunk, rows)| {
            widest(
                #[inline(always)]
                || {
                    for (r, row) in rows.chunks_exact_mut(cols).enumerate() {
                        let Some(mask) = mask else {
                            softmax_row(row, scale, |_| {});
                            continue;
                        };
                        let (at, step) = mask.row(chunk * ROWS + r);
                        let masked = |j: usize| mask.data[at + j * step];
                        for (j, s) in row.iter_mut().enumerate() {
                            if masked(j) {
                                *s = f32::NEG_INFINITY;
                            }
                        }
                        softmax_row(row, scale, |row| {
                            for (j, s) in row.iter_mut().enumerate() {
                                if masked(j) {
                                    *s = 0.0;
                                }
                            }
                        });
                    }
                },
            )
        });
}

/// One row in place: `exp(scale * (x - max)) / sum`, all zeros when every entry is `-inf`.
/// `clear` zeroes the masked entries after `exp` (which saturates `-inf` to `e^-87`, not 0).
#[inline(always)]
fn softmax_row(row: &mut [f32], scale: f32, clear: impl Fn(&mut [f32])) {
    let max = max(row);
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    for s in row.iter_mut() {
        *s = exp(scale * (*s - max));
    }
    clear(row);
    let inv = 1.0 / sum_by(row, |e| e);
    for s in row.iter_mut() {
        *s *= inv;
    }
}

/// The gradient of the scores from that of the probabilities, in place: with `p` a row of
/// [`softmax_rows`]' output and `dp` its gradient, `dp` becomes
/// `scale * p * (dp - sum_j dp_j p_j)` (the gradient of the unscaled scores).
pub fn softmax_rows_backward(p: &[f32], dp: &mut [f32], cols: usize, scale: f32) {
    if cols == 0 {
        return;
    }
    dp.par_chunks_mut(ROWS * cols)
        .zip(p.par_chunks(ROWS * cols))
        .for_each(|(dp, p)| {
            widest(
                #[inline(always)]
                || {
                    for (dp, p) in dp.chunks_exact_mut(cols).zip(p.chunks_exact(cols)) {
                        let dot = dot(dp, p);
                        for (g, &p) in dp.iter_mut().zip(p) {
                            *g = scale * p * (*g - dot);
                        }
                    }
                },
            )
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_masked_keys_are_zero() {
        let mut scores = vec![1.0, 2.0, 3.0, 0.5, 0.5, 9.0];
        // Mask [1, 1, 2, 3]: row 0 keeps all, row 1 masks key 2.
        let mask = Mask::new(
            vec![false, false, false, false, false, true],
            [1, 1, 2, 3],
            [1, 1, 2, 3],
        )
        .unwrap();
        softmax_rows(&mut scores, 3, 0.5, Some(&mask));
        let e = [0.5f32.exp(), 1f32.exp(), 1.5f32.exp()];
        let sum: f32 = e.iter().sum();
        for j in 0..3 {
            assert!((scores[j] - e[j] / sum).abs() < 1e-6);
        }
        assert_eq!(&scores[3..], &[0.5, 0.5, 0.0]);
    }

    #[test]
    fn a_mask_that_does_not_broadcast_is_refused() {
        assert!(Mask::new(vec![false; 2], [1, 1, 1, 2], [1, 1, 2, 3]).is_none());
        assert!(Mask::new(vec![false; 3], [1, 1, 1, 2], [1, 1, 2, 2]).is_none());
    }
}
