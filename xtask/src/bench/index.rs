//! `cargo xtask bench index`: the exact index and the approximate ones (our HNSW, usearch's)
//! on random unit vectors of dimension 512, beside FAISS `IndexFlatIP` and `IndexHNSWFlat`
//! (same M, efConstruction, efSearch) measured on the same machine by
//! `xtask/bench/index_reference.py`.
//!
//! Per size: build time and memory (resident-set growth) of each index; queries per second
//! one query per call ("single") and all queries in one call ("batched", median of three
//! calls); and, per efSearch,
//! recall@10 of each approximate index against the exact index.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use mm_core::BackendJob;
use mm_data::synth::vectors::random_unit_vectors;
use mm_retrieval::{ExactIndex, Hit, HnswIndex, HnswParams, IndexError, UsearchIndex, VectorIndex};
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

/// An approximate index the bench can measure.
#[derive(Clone, Copy)]
enum Ann {
    /// Ours ([`HnswIndex`]).
    Hnsw,
    /// The usearch library's ([`UsearchIndex`]).
    Usearch,
}

/// The sizes, approximate indexes and efSearch values to measure.
pub struct IndexBench {
    sizes: Vec<usize>,
    ann: Vec<Ann>,
    ef_search: Vec<usize>,
}

/// An approximate index whose efSearch can change between searches.
trait Tunable: VectorIndex {
    fn set_ef(&mut self, ef: usize);
}

impl Tunable for HnswIndex {
    fn set_ef(&mut self, ef: usize) {
        self.set_ef_search(ef);
    }
}

impl Tunable for UsearchIndex {
    fn set_ef(&mut self, ef: usize) {
        self.set_ef_search(ef);
    }
}

/// One database size: its vectors, the queries and their exact answers.
struct Case<'a> {
    n: usize,
    data: &'a [f32],
    queries: &'a [f32],
    truth: &'a [Vec<Hit>],
    ef_search: &'a [usize],
}

impl Case<'_> {
    /// Build time and memory of `index` (empty) filled with the data, then recall@10 and
    /// speeds at each efSearch; figures are named `"{n} {name} ..."`.
    fn measure(
        &self,
        name: &str,
        mut index: impl Tunable,
        out: &mut Vec<Figure>,
    ) -> Result<(), IndexError> {
        let n = self.n;
        timed_build(&format!("{n} {name}"), out, || {
            index.add(self.data).map(drop)
        })?;
        for &ef in self.ef_search {
            index.set_ef(ef);
            let prefix = format!("{n} {name} ef{ef}");
            let found = speeds(&index, self.queries, &prefix, out)?;
            out.push(Figure::higher_is_better(
                format!("{prefix} recall_at_10"),
                recall(&found, self.truth),
            ));
        }
        Ok(())
    }
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
    /// Parses `--sizes`, `--ann` (`hnsw`, `usearch`, comma-separated; `none` for the exact
    /// index only) and `--ef-search`.
    pub fn from_flags(sizes: &str, ann: &str, ef_search: &str) -> Result<Self> {
        let ann = ann
            .split(',')
            .map(str::trim)
            .filter(|s| *s != "none")
            .map(|s| match s {
                "hnsw" => Ok(Ann::Hnsw),
                "usearch" => Ok(Ann::Usearch),
                _ => bail!("--ann: `{s}` is not hnsw, usearch or none"),
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            sizes: list(sizes, "sizes")?,
            ann,
            ef_search: list(ef_search, "ef-search")?,
        })
    }
}

fn rss_mib() -> f64 {
    crate::common::proc_status_mib("self", "VmRSS").unwrap_or(f64::NAN)
}

/// Runs `build` and records its time and resident-set growth as `"{prefix} build_seconds"`
/// and `"{prefix} memory_mib"`.
fn timed_build(
    prefix: &str,
    out: &mut Vec<Figure>,
    build: impl FnOnce() -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    let before = rss_mib();
    let t = Instant::now();
    build()?;
    out.push(Figure::lower_is_better(
        format!("{prefix} build_seconds"),
        t.elapsed().as_secs_f64(),
    ));
    out.push(Figure::lower_is_better(
        format!("{prefix} memory_mib"),
        rss_mib() - before,
    ));
    Ok(())
}

/// Times `index` on the queries one per call ("single") and all in one call ("batched", the
/// median of three calls), records `"{prefix} single_qps"` and `"{prefix} batched_qps"`, and
/// returns the batched results.
fn speeds(
    index: &dyn VectorIndex,
    queries: &[f32],
    prefix: &str,
    out: &mut Vec<Figure>,
) -> Result<Vec<Vec<Hit>>, IndexError> {
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
    out.push(Figure::higher_is_better(
        format!("{prefix} single_qps"),
        single,
    ));
    out.push(Figure::higher_is_better(
        format!("{prefix} batched_qps"),
        batched,
    ));
    Ok(found)
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
            let mut exact = ExactIndex::<A::InnerBackend>::new(DIM, &device);
            timed_build(&format!("{n} flat"), &mut out, || {
                exact.add(&data).map(drop)
            })?;
            let truth = speeds(&exact, &queries, &format!("{n} flat"), &mut out)?;
            drop(exact);
            let params = HnswParams {
                m: M,
                ef_construction: EF_CONSTRUCTION,
                ef_search: self.ef_search[0],
            };
            for ann in &self.ann {
                let case = Case {
                    n,
                    data: &data,
                    queries: &queries,
                    truth: &truth,
                    ef_search: &self.ef_search,
                };
                match ann {
                    Ann::Hnsw => case.measure("hnsw", HnswIndex::new(DIM, params)?, &mut out)?,
                    Ann::Usearch => {
                        case.measure("usearch", UsearchIndex::new(DIM, params)?, &mut out)?
                    }
                }
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
        // Both approximate indexes are compared with FAISS's IndexHNSWFlat.
        for ann in ["hnsw", "usearch"] {
            for k in ["build_seconds", "memory_mib"] {
                flat.insert(format!("{n} {ann} {k}"), size["hnsw"][k].clone());
            }
            for point in size["hnsw"]["sweep"].as_array().into_iter().flatten() {
                let ef = point["ef_search"].as_u64().unwrap_or(0);
                for k in ["recall_at_10", "single_qps", "batched_qps"] {
                    flat.insert(format!("{n} {ann} ef{ef} {k}"), point[k].clone());
                }
            }
        }
    }
    Value::Object(flat)
}
