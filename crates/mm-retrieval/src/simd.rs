//! Inner products on the CPU's vector units, chosen at run time (AVX2 + FMA where the CPU has
//! them, NEON on aarch64, scalar otherwise) through `pulp`, without `unsafe` in this crate.

use pulp::{Arch, Simd, WithSimd};

/// The kernels of the CPU this runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dot {
    arch: Arch,
}

impl Dot {
    /// Detects the CPU's vector extensions.
    pub fn new() -> Self {
        Self { arch: Arch::new() }
    }

    /// `a . b`; the slices have equal length.
    #[inline]
    pub fn one(&self, a: &[f32], b: &[f32]) -> f32 {
        self.arch.dispatch(One { a, b })
    }

    /// `q . v` for four vectors at once (the query is read once per four rows).
    #[inline]
    pub fn four(&self, q: &[f32], v: [&[f32]; 4]) -> [f32; 4] {
        self.arch.dispatch(Four { q, v })
    }
}

struct One<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl WithSimd for One<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let (a, a_tail) = S::as_simd_f32s(self.a);
        let (b, b_tail) = S::as_simd_f32s(self.b);
        // Four independent accumulators hide the FMA latency.
        let mut acc = [simd.splat_f32s(0.0); 4];
        let mut a4 = a.chunks_exact(4);
        let mut b4 = b.chunks_exact(4);
        for (x, y) in (&mut a4).zip(&mut b4) {
            for j in 0..4 {
                acc[j] = simd.mul_add_f32s(x[j], y[j], acc[j]);
            }
        }
        for (&x, &y) in a4.remainder().iter().zip(b4.remainder()) {
            acc[0] = simd.mul_add_f32s(x, y, acc[0]);
        }
        let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
        let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
        simd.reduce_sum_f32s(sum) + tail
    }
}

struct Four<'a> {
    q: &'a [f32],
    v: [&'a [f32]; 4],
}

impl WithSimd for Four<'_> {
    type Output = [f32; 4];

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> [f32; 4] {
        let (q, q_tail) = S::as_simd_f32s(self.q);
        let rows = self.v.map(|v| S::as_simd_f32s(v));
        let mut acc = [simd.splat_f32s(0.0); 4];
        // Zipped iterators: no bounds check in the loop.
        let lanes = q
            .iter()
            .zip(rows[0].0)
            .zip(rows[1].0)
            .zip(rows[2].0)
            .zip(rows[3].0);
        for ((((&x, &r0), &r1), &r2), &r3) in lanes {
            acc[0] = simd.mul_add_f32s(x, r0, acc[0]);
            acc[1] = simd.mul_add_f32s(x, r1, acc[1]);
            acc[2] = simd.mul_add_f32s(x, r2, acc[2]);
            acc[3] = simd.mul_add_f32s(x, r3, acc[3]);
        }
        let mut out = [0.0f32; 4];
        for j in 0..4 {
            let tail: f32 = q_tail.iter().zip(rows[j].1).map(|(x, y)| x * y).sum();
            out[j] = simd.reduce_sum_f32s(acc[j]) + tail;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_a_scalar_sum_at_every_length() {
        let dot = Dot::new();
        for len in [0, 1, 7, 8, 31, 33, 512, 515] {
            let a: Vec<f32> = (0..len)
                .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
                .collect();
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|r| (0..len).map(|i| ((i * 3 + r) % 11) as f32 / 11.0).collect())
                .collect();
            let scalar = |b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            let tol = 1e-5 * (len as f32 + 1.0);
            assert!(
                (dot.one(&a, &rows[0]) - scalar(&rows[0])).abs() < tol,
                "len {len}"
            );
            let four = dot.four(&a, [&rows[0], &rows[1], &rows[2], &rows[3]]);
            for r in 0..4 {
                assert!(
                    (four[r] - scalar(&rows[r])).abs() < tol,
                    "len {len} row {r}"
                );
            }
        }
    }
}
