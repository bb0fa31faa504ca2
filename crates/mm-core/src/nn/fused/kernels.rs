//! The element-wise kernels on contiguous `f32` slices: chunks spread over rayon's pool, each
//! chunk a plain loop that the compiler vectorizes (no libm call inside).

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

/// `out[i] = x[i] * sigmoid(a x[i])`.
pub fn gated_unit(a: f32, x: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| {
            widest(
                #[inline(always)]
                || {
                    for (o, &v) in out.iter_mut().zip(x) {
                        *o = gated(a, v);
                    }
                },
            )
        });
}

/// `out[i] = grad[i] * d/dx[x * sigmoid(a x)]` at `x[i]`.
pub fn gated_unit_backward(a: f32, x: &[f32], grad: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
        .for_each(|(out, (x, grad))| {
            widest(
                #[inline(always)]
                || {
                    for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
                        *o = g * gated_slope(a, v);
                    }
                },
            )
        });
}

/// `out[i][k][j][l] = src[i][j][k][l]` for `src` of shape `[a, b, c, d]`: the middle two axes
/// swapped, written contiguously (attention's head split and merge), rows of `d` copied whole.
pub fn swap_middle(src: &[f32], [_, b, c, d]: [usize; 4], out: &mut [f32]) {
    if b * d == 0 {
        return;
    }
    out.par_chunks_mut(b * d)
        .enumerate()
        .for_each(|(row, chunk)| {
            widest(
                #[inline(always)]
                || {
                    let (i, k) = (row / c, row % c);
                    for (j, dst) in chunk.chunks_exact_mut(d).enumerate() {
                        let at = ((i * b + j) * c + k) * d;
                        dst.copy_from_slice(&src[at..at + d]);
                    }
                },
            )
        });
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
}
