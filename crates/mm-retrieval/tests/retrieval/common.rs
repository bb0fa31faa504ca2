//! Brute-force answers the index tests compare with.

use mm_retrieval::Hit;

/// The ids of the `k` rows of `data` with the largest inner product with `query`, best first.
pub fn brute_force(data: &[f32], query: &[f32], k: usize) -> Vec<u64> {
    let dim = query.len();
    let mut scored: Vec<(f32, u64)> = data
        .chunks(dim)
        .enumerate()
        .map(|(i, row)| (row.iter().zip(query).map(|(a, b)| a * b).sum(), i as u64))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

/// Share of each query's true 10 nearest (by brute force) that `found` holds.
pub fn recall_at_10(data: &[f32], queries: &[f32], found: &[Vec<Hit>]) -> f64 {
    let dim = queries.len() / found.len();
    let agree: usize = queries
        .chunks(dim)
        .zip(found)
        .map(|(q, hits)| {
            let truth = brute_force(data, q, 10);
            hits.iter().filter(|h| truth.contains(&h.id)).count()
        })
        .sum();
    agree as f64 / (10 * found.len()) as f64
}
