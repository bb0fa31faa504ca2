//! Test support: kernels that sum floats across rayon's tasks must give the same bits however
//! the tasks are stolen (docs/architecture.md, "Threads").

/// Spread-out test values in about `[-1.5, 1.5]`, from an index.
pub(crate) fn scrambled(i: usize) -> f32 {
    ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 3.0
}

/// Runs `kernel` 41 times on a 4-thread pool and asserts each run's outputs are the first
/// run's, bit for bit (`what` names them in a failure).
pub(crate) fn repeats_bit_for_bit(what: &str, kernel: impl Fn() -> Vec<Vec<f32>> + Send + Sync) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("a 4-thread pool");
    let bits = |outputs: Vec<Vec<f32>>| -> Vec<Vec<u32>> {
        outputs
            .iter()
            .map(|v| v.iter().map(|f| f.to_bits()).collect())
            .collect()
    };
    let first = bits(pool.install(&kernel));
    for run in 1..=40 {
        let again = bits(pool.install(&kernel));
        for (i, (a, b)) in again.iter().zip(&first).enumerate() {
            assert!(a == b, "{what}: output {i} changed on run {run}");
        }
    }
}
