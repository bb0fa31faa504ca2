//! Seeded two-view data whose population canonical correlations are known.
//!
//! The generator is self-contained (SplitMix64 + Box-Muller), so the same seed gives the same
//! matrices on every platform and in every version of this crate; the reference scripts read
//! the files `cargo xtask data synth cca` writes rather than re-implementing it.

use crate::matrix::HostMatrix;
use crate::rng::SplitMix64;

/// Two views with population canonical correlations `rhos` (then zeros).
///
/// Latent pairs `(u_i, v_i)` are standard normal with correlation `rhos[i]`; the remaining latent
/// coordinates are independent noise. Each view is its latent vector times a fixed,
/// well-conditioned mixing matrix (`(I + G / (4 sqrt d)) diag(s)`, `s_j` in `[1/2, 2]`), which
/// CCA is invariant to, so the population answer stays `rhos`.
///
/// # Shapes
/// - returns `([n, d_x], [n, d_y])`
pub fn correlated_views(
    n: usize,
    dx: usize,
    dy: usize,
    rhos: &[f64],
    seed: u64,
) -> (HostMatrix, HostMatrix) {
    assert!(
        rhos.len() <= dx.min(dy),
        "more correlated pairs than dimensions"
    );
    let mut rng = SplitMix64::new(seed);
    let mix_x = mixing(dx, &mut rng);
    let mix_y = mixing(dy, &mut rng);
    let mut x = Vec::with_capacity(n * dx);
    let mut y = Vec::with_capacity(n * dy);
    let (mut lx, mut ly) = (vec![0.0; dx], vec![0.0; dy]);
    for _ in 0..n {
        for (i, &rho) in rhos.iter().enumerate() {
            let (a, b) = (rng.normal(), rng.normal());
            lx[i] = a;
            ly[i] = rho * a + (1.0 - rho * rho).sqrt() * b;
        }
        lx[rhos.len()..].iter_mut().for_each(|v| *v = rng.normal());
        ly[rhos.len()..].iter_mut().for_each(|v| *v = rng.normal());
        x.extend(mat_vec(&lx, &mix_x));
        y.extend(mat_vec(&ly, &mix_y));
    }
    (
        HostMatrix::new(n, dx, x).expect("n x d_x"),
        HostMatrix::new(n, dy, y).expect("n x d_y"),
    )
}

/// The views the CCA parity test and `cargo xtask bench cca` use: 20,000 samples of
/// 128 and 96 dimensions with population correlations 0.9, 0.8, ..., 0.2 (then zeros).
pub fn benchmark_views() -> (HostMatrix, HostMatrix) {
    correlated_views(20_000, 128, 96, &BENCHMARK_RHOS, 2024)
}

/// Population canonical correlations of [`benchmark_views`].
pub const BENCHMARK_RHOS: [f64; 8] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];

/// Two 2-D views of an angle `t`: `X = (cos t, sin t)`, `Y = (cos 2t, sin 2t)`, each plus
/// Gaussian noise of standard deviation `noise`.
///
/// Every linear correlation between the views is zero in the population, yet `Y` is a
/// polynomial of `X` (`cos 2t = x1^2 - x2^2`, `sin 2t = 2 x1 x2`): linear CCA finds nothing,
/// nonlinear encoders can reach a total correlation near 2.
///
/// # Shapes
/// - returns `([n, 2], [n, 2])`
pub fn circle_views(n: usize, noise: f64, seed: u64) -> (HostMatrix, HostMatrix) {
    let mut rng = SplitMix64::new(seed);
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let t = std::f64::consts::TAU * rng.uniform();
        x.extend([
            t.cos() + noise * rng.normal(),
            t.sin() + noise * rng.normal(),
        ]);
        y.extend([
            (2.0 * t).cos() + noise * rng.normal(),
            (2.0 * t).sin() + noise * rng.normal(),
        ]);
    }
    (
        HostMatrix::new(n, 2, x).expect("n x 2"),
        HostMatrix::new(n, 2, y).expect("n x 2"),
    )
}

/// `(I + G / (4 sqrt d)) diag(s)`: singular values of the first factor lie in about
/// `[0.5, 1.5]`, the column scales in `[1/2, 2]`.
fn mixing(d: usize, rng: &mut SplitMix64) -> HostMatrix {
    let scale: Vec<f64> = (0..d)
        .map(|_| 2f64.powf(2.0 * rng.uniform() - 1.0))
        .collect();
    let g = 0.25 / (d as f64).sqrt();
    let mut data = Vec::with_capacity(d * d);
    for r in 0..d {
        for (c, s) in scale.iter().enumerate() {
            let identity = if r == c { 1.0 } else { 0.0 };
            data.push((identity + g * rng.normal()) * s);
        }
    }
    HostMatrix::new(d, d, data).expect("d x d")
}

/// Row vector times matrix: `v [d] * m [d, d]`.
fn mat_vec(v: &[f64], m: &HostMatrix) -> Vec<f64> {
    let mut out = vec![0.0; m.cols];
    for (r, &vr) in v.iter().enumerate() {
        let row = &m.data[r * m.cols..(r + 1) * m.cols];
        out.iter_mut().zip(row).for_each(|(o, &w)| *o += vr * w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_fixed_by_its_seed() {
        // SplitMix64's published first output for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let (a, _) = correlated_views(5, 4, 3, &[0.9], 7);
        let (b, _) = correlated_views(5, 4, 3, &[0.9], 7);
        let (c, _) = correlated_views(5, 4, 3, &[0.9], 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut rng = SplitMix64::new(1);
        let v: Vec<f64> = (0..200_000).map(|_| rng.normal()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
    }
}
