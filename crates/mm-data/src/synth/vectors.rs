//! Seeded random unit vectors (uniform on the sphere), for tests and `bench index`.

use crate::rng::SplitMix64;
use rayon::prelude::*;

/// `n` unit vectors of width `dim`, row-major: normalized standard normals, generated in
/// parallel blocks of 4096 rows, each block seeded from `seed` and its number.
pub fn random_unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut out = vec![0.0f32; n * dim];
    out.par_chunks_mut(4096 * dim.max(1))
        .enumerate()
        .for_each(|(block, rows)| {
            let mut rng = SplitMix64::new(seed ^ (block as u64).wrapping_mul(0x9E37_79B9));
            for row in rows.chunks_mut(dim) {
                row.iter_mut().for_each(|v| *v = rng.normal() as f32);
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
            }
        });
    out
}
