//! `cargo xtask bench index`: the exact and HNSW indexes on random unit vectors of dimension
//! 512, beside FAISS `IndexFlatIP` and `IndexHNSWFlat` (same M, efConstruction, efSearch)
//! measured on the same machine by `xtask/bench/index_reference.py`.
//!
//! Per size: build time and memory (resident-set growth) of each index; queries per second
//! one query per call ("single") and all queries in one call ("batched", median of three
//! calls); and, per efSearch,
//! recall@10 of HNSW against the exact index.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use mm_core::BackendJob;
use mm_retrieval::synth::random_unit_vectors;
use mm_retrieval::{ExactIndex, Hit, HnswIndex, HnswParams, IndexError, VectorIndex};
use serde_json::{Map, Value};

use super::Figure;

/// Vector width.
pub const DIM: usize = 512;
/// Queries per batch.
pub const QUERIES: usize = 1000;
/// Queries timed one at a time.
pub const SINGLE: usize = 200;
/// HNSW neighbours per node.
pub const M: usize = 32;
/// HNSW build-time candidate list.
pub const EF_CONSTRUCTION: usize = 128;
const K: usize = 10;
/// Timed calls of the whole batch (the median is reported).
const BATCH_RUNS: usize = 3;

/// The sizes and efSearch values to measure.
pub struct IndexBench {
    sizes: Vec<usize>,
    ef_search: Vec<usize>,
    skip_hnsw: bool,
}

fn list(flag: &str, name: &str) -> Result<Vec<usize>> {
    flag.split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("--{name}: `{s}` is not a number"))
        })
        .collect()
}

impl IndexBench {
    /// Parses `--sizes` and `--ef-search`.
    pub fn from_flags(sizes: &str, ef_search: &str, skip_hnsw: bool) -> Result<Self> {
        Ok(Self {
            sizes: list(sizes, "sizes")?,
            ef_search: list(ef_search, "ef-search")?,
            skip_hnsw,
        })
    }
}

fn rss_mib() -> f64 {
    crate::common::proc_status_mib("self", "VmRSS").unwrap_or(f64::NAN)
}

/// (single qps, batched qps, batched results)
fn speeds(
    index: &dyn VectorIndex,
    queries: &[f32],
) -> Result<(f64, f64, Vec<Vec<Hit>>), IndexError> {
    index.search_batch(&queries[..10 * DIM], K)?; // warm-up
    // The median of three calls: one call of a second or less is at the mercy of the machine.
    let mut times = Vec::new();
    let mut found = Vec::new();
    for _ in 0..BATCH_RUNS {
        let t = Instant::now();
        found = index.search_batch(queries, K)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let batched = QUERIES as f64 / times[BATCH_RUNS / 2];
    let t = Instant::now();
    for q in queries.chunks(DIM).take(SINGLE) {
        index.search(q, K)?;
    }
    let single = SINGLE as f64 / t.elapsed().as_secs_f64();
    Ok((single, batched, found))
}

fn recall(found: &[Vec<Hit>], truth: &[Vec<Hit>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|h| t.iter().any(|x| x.id == h.id)).count())
        .sum();
    hits as f64 / (truth.len() * K) as f64
}

impl BackendJob for IndexBench {
    type Output = Result<Vec<Figure>, IndexError>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        let mut out = Vec::new();
        for &n in &self.sizes {
            let data = random_unit_vectors(n, DIM, 2024);
            let queries = random_unit_vectors(QUERIES, DIM, 7);
            let before = rss_mib();
            let t = Instant::now();
            let mut exact = ExactIndex::<A::InnerBackend>::new(DIM, &device);
            exact.add(&data)?;
            out.push(Figure::lower_is_better(
                format!("{n} flat build_seconds"),
                t.elapsed().as_secs_f64(),
            ));
            out.push(Figure::lower_is_better(
                format!("{n} flat memory_mib"),
                rss_mib() - before,
            ));
            let (single, batched, truth) = speeds(&exact, &queries)?;
            out.push(Figure::higher_is_better(
                format!("{n} flat single_qps"),
                single,
            ));
            out.push(Figure::higher_is_better(
                format!("{n} flat batched_qps"),
                batched,
            ));
            drop(exact);
            if self.skip_hnsw {
                continue;
            }
            let before = rss_mib();
            let t = Instant::now();
            let params = HnswParams {
                m: M,
                ef_construction: EF_CONSTRUCTION,
                ef_search: self.ef_search[0],
            };
            let mut hnsw = HnswIndex::new(DIM, params)?;
            hnsw.add(&data)?;
            out.push(Figure::lower_is_better(
                format!("{n} hnsw build_seconds"),
                t.elapsed().as_secs_f64(),
            ));
            out.push(Figure::lower_is_better(
                format!("{n} hnsw memory_mib"),
                rss_mib() - before,
            ));
            drop(data);
            for &ef in &self.ef_search {
                hnsw.set_ef_search(ef);
                let (single, batched, found) = speeds(&hnsw, &queries)?;
                out.push(Figure::higher_is_better(
                    format!("{n} hnsw ef{ef} recall_at_10"),
                    recall(&found, &truth),
                ));
                out.push(Figure::higher_is_better(
                    format!("{n} hnsw ef{ef} single_qps"),
                    single,
                ));
                out.push(Figure::higher_is_better(
                    format!("{n} hnsw ef{ef} batched_qps"),
                    batched,
                ));
            }
        }
        Ok(out)
    }
}

/// The reference script's nested JSON as the flat keys the figures use.
pub fn flatten_reference(r: Value) -> Value {
    let mut flat = Map::new();
    for key in ["implementation", "threads", "machine"] {
        flat.insert(key.into(), r[key].clone());
    }
    for size in r["sizes"].as_array().into_iter().flatten() {
        let n = size["n"].as_u64().unwrap_or(0);
        if let Some(flat_index) = size["flat"].as_object() {
            for (k, v) in flat_index {
                flat.insert(format!("{n} flat {k}"), v.clone());
            }
        }
        for k in ["build_seconds", "memory_mib"] {
            flat.insert(format!("{n} hnsw {k}"), size["hnsw"][k].clone());
        }
        for point in size["hnsw"]["sweep"].as_array().into_iter().flatten() {
            let ef = point["ef_search"].as_u64().unwrap_or(0);
            for k in ["recall_at_10", "single_qps", "batched_qps"] {
                flat.insert(format!("{n} hnsw ef{ef} {k}"), point[k].clone());
            }
        }
    }
    Value::Object(flat)
}
