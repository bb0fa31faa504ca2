//! The element-wise kernels on contiguous `f32` slices: chunks spread over rayon's pool, each
//! chunk a plain loop that the compiler vectorizes (no libm call inside).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::wide::widest;

/// Elements per rayon task: big enough to amortize scheduling, small enough to balance.
const CHUNK: usize = 16 * 1024;

/// `e^x` for `f32`, branch-free: `x = n ln2 + r` with `|r| <= ln2 / 2`, Cephes' minimax
/// polynomial for `e^r`, and `2^n` built in the exponent bits. Relative error within a few
/// ulp over the clamped range; inputs beyond it saturate instead of reaching 0 or inf.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5 * 2^23 (no libm `roundf`, which would keep
    // the loop from vectorizing).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 split into a part exact in f32 and a remainder (Cody-Waite).
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let poly = 1.987_569_2e-4;
    let poly = poly * r + 1.398_2e-3;
    let poly = poly * r + 8.333_452e-3;
    let poly = poly * r + 4.166_579_6e-2;
    let poly = poly * r + 0.166_666_65;
    let poly = poly * r + 0.5;
    let p = poly * r * r + r + 1.0;
    // 2^n from the exponent bits. `n + 127` lies in [1, 254]; added to 2^23 it is the low
    // mantissa bits of the sum, read without a float-to-int conversion (whose saturating
    // `as` would keep the loop scalar).
    const BIAS: f32 = 8_388_608.0 + 127.0;
    let scale = f32::from_bits(((n + BIAS).to_bits() & 0x7f_ffff) << 23);
    p * scale
}

/// Lanes of the reductions below: independent accumulators the compiler keeps in one vector
/// register each, where a single running sum would serialize on the add's latency.
const LANES: usize = 16;

/// `sum_i f(x[i])`, accumulated in [`LANES`] partial sums (vectorized).
#[inline(always)]
pub fn sum_by(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// `sum_i a[i] * b[i]`, accumulated as [`sum_by`] is.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in ca.zip(cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *acc += x * y;
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// The largest element (`-inf` for an empty slice), over [`LANES`] running maxima.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().fold(rest, |m, &v| if v > m { v } else { m })
}

/// The mean of `x` and `1 / sqrt(var + epsilon)` (biased variance), in two vectorized passes:
/// the statistics of a group or layer norm.
#[inline(always)]
pub fn mean_rstd(x: &[f32], epsilon: f32) -> (f32, f32) {
    let n = x.len().max(1) as f32;
    let mean = sum_by(x, |v| v) / n;
    let var = sum_by(x, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + epsilon).sqrt())
}

/// `sigmoid(a x)`.
#[inline(always)]
pub fn sigmoid(a: f32, x: f32) -> f32 {
    1.0 / (1.0 + exp(-a * x))
}

/// `x * sigmoid(a x)`: quick-GELU at `a = 1.702`, SiLU at `a = 1`.
#[inline(always)]
pub fn gated(a: f32, x: f32) -> f32 {
    x * sigmoid(a, x)
}

/// `d/dx [x * sigmoid(a x)] = s + a x s (1 - s)`, `s = sigmoid(a x)`.
#[inline(always)]
pub fn gated_slope(a: f32, x: f32) -> f32 {
    let s = sigmoid(a, x);
    s + a * x * s * (1.0 - s)
}

/// A new buffer of `len` elements that `fill` writes, with no zero fill first.
///
/// # Panics
/// Unless `fill` reports that it wrote every one of the `len` elements (its return value).
pub fn written(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>]) -> usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let wrote = fill(&mut out.spare_capacity_mut()[..len]);
    assert_eq!(wrote, len, "a kernel left elements of its output unwritten");
    // SAFETY: `fill` wrote all `len` elements (the kernels below count what they write, and
    // the count was checked above).
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len)
    };
    out
}

/// `out[i] = x[i] * sigmoid(a x[i])`; returns the number of elements written.
pub fn gated_unit(a: f32, x: &[f32], out: &mut [MaybeUninit<f32>]) -> usize {
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .map(|(out, x)| {
            widest(
                #[inline(always)]
                || {
                    for (o, &v) in out.iter_mut().zip(x) {
                        o.write(gated(a, v));
                    }
                },
            );
            out.len().min(x.len())
        })
        .sum()
}

/// `out[i] = grad[i] * d/dx[x * sigmoid(a x)]` at `x[i]`; returns the number written.
pub fn gated_unit_backward(a: f32, x: &[f32], grad: &[f32], out: &mut [MaybeUninit<f32>]) -> usize {
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
        .map(|(out, (x, grad))| {
            widest(
                #[inline(always)]
                || {
                    for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
                        o.write(g * gated_slope(a, v));
                    }
                },
            );
            out.len().min(x.len()).min(grad.len())
        })
        .sum()
}

/// `out[i][k][j][l] = src[i][j][k][l]` for `src` of shape `[a, b, c, d]`: the middle two axes
/// swapped, written contiguously (attention's head split and merge), rows of `d` copied whole;
/// returns the number of elements written.
pub fn swap_middle(src: &[f32], [_, b, c, d]: [usize; 4], out: &mut [MaybeUninit<f32>]) -> usize {
    if b * d == 0 {
        return 0;
    }
    out.par_chunks_mut(b * d)
        .enumerate()
        .map(|(row, chunk)| {
            widest(
                #[inline(always)]
                || {
                    let (i, k) = (row / c, row % c);
                    let mut wrote = 0;
                    for (j, dst) in chunk.chunks_exact_mut(d).enumerate() {
                        let at = ((i * b + j) * c + k) * d;
                        for (o, &v) in dst.iter_mut().zip(&src[at..at + d]) {
                            o.write(v);
                        }
                        wrote += d;
                    }
                    wrote
                },
            )
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_over_the_range() {
        let mut worst = 0.0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), (-87.0f32).exp());
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn outputs_written_without_a_zero_fill_hold_every_element() {
        // More than one rayon chunk, and a ragged last one.
        let n = 2 * CHUNK + 37;
        let x: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.013).sin() * 6.0).collect();
        let g: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.007).cos()).collect();
        // NaNs where the next buffers of this size are likely to come from: an element a
        // kernel did not write would show.
        drop(vec![f32::NAN; n]);
        let y = written(n, |out| gated_unit(1.702, &x, out));
        drop(vec![f32::NAN; n]);
        let dy = written(n, |out| gated_unit_backward(1.702, &x, &g, out));
        for i in 0..n {
            assert_eq!(y[i], gated(1.702, x[i]), "forward, element {i}");
            assert_eq!(
                dy[i],
                g[i] * gated_slope(1.702, x[i]),
                "backward, element {i}"
            );
        }
        // [2, 3, 5, 4] -> [2, 5, 3, 4].
        let dims = [2, 3, 5, 4];
        let src: Vec<f32> = (0..120).map(|i| i as f32).collect();
        drop(vec![f32::NAN; 120]);
        let out = written(120, |out| swap_middle(&src, dims, out));
        for (i, j, k, l) in (0..2).flat_map(|i| {
            (0..3).flat_map(move |j| (0..5).flat_map(move |k| (0..4).map(move |l| (i, j, k, l))))
        }) {
            assert_eq!(
                out[((i * 5 + k) * 3 + j) * 4 + l],
                src[((i * 3 + j) * 5 + k) * 4 + l]
            );
        }
    }

    #[test]
    #[should_panic(expected = "left elements of its output unwritten")]
    fn a_kernel_that_writes_too_little_is_caught_before_its_output_is_used() {
        // The input is shorter than the output: the kernel writes only what it has.
        written(10, |out| gated_unit(1.0, &[1.0; 4], out));
    }
}
