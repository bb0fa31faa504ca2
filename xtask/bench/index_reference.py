"""Reference figures for `cargo xtask bench index`: FAISS IndexFlatIP and IndexHNSWFlat
(inner product) on random unit vectors of dimension 512, with the same M, efConstruction and
efSearch values as mm's HNSW index.

Pinned: faiss-cpu 1.15.1, numpy 2.4.6. Run on the machine you compare on, with the threads mm
gets (2 on the CI machine):

    python xtask/bench/index_reference.py --threads 2 --sizes 100000 --out xtask/bench/index-reference.json

For each size: build (add) time and memory (resident-set growth) of each index; queries/s one
query per call ("single") and 1000 queries in one call ("batched", the median of three
calls); recall@10 of HNSW against the flat index at each efSearch. `bench index` sets both of
mm's approximate indexes (its own HNSW and usearch's) beside the IndexHNSWFlat figures. The
vectors are normalized standard normals from numpy's PCG64 (mm draws its own from the same
distribution).
"""

import argparse
import json
import os
import platform
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--sizes", default="100000")
parser.add_argument("--dim", type=int, default=512)
parser.add_argument("--queries", type=int, default=1000)
parser.add_argument("--single", type=int, default=200, help="queries timed one at a time")
parser.add_argument("--m", type=int, default=32)
parser.add_argument("--ef-construction", type=int, default=128)
parser.add_argument("--ef-search", default="128,512,1024,2048,4096")
parser.add_argument("--skip-hnsw", action="store_true", help="flat index only (for large sizes)")
parser.add_argument("--out", default="xtask/bench/index-reference.json")
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import faiss  # noqa: E402  (after the thread variables)
import numpy as np  # noqa: E402

faiss.omp_set_num_threads(args.threads)


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def unit_vectors(n, dim, seed):
    x = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def single_qps(index, queries, k=10):
    t = time.perf_counter()
    for q in queries:
        index.search(q[None, :], k)
    return len(queries) / (time.perf_counter() - t)


def batched_qps(index, queries, k=10, runs=3):
    """Median of `runs` timed searches of the whole batch (after a short warm-up)."""
    index.search(queries[:10], k)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        _, ids = index.search(queries, k)
        times.append(time.perf_counter() - t)
    return len(queries) / sorted(times)[runs // 2], ids


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


results = []
for n in [int(s) for s in args.sizes.split(",")]:
    data = unit_vectors(n, args.dim, 2024)
    queries = unit_vectors(args.queries, args.dim, 7)
    before = rss_mib()
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(data)
    flat_build = time.perf_counter() - t
    flat_mib = rss_mib() - before
    flat_batched, truth = batched_qps(flat, queries)
    flat_single = single_qps(flat, queries[: args.single])
    entry = {"n": n, "flat": {"build_seconds": flat_build, "memory_mib": flat_mib,
                              "single_qps": flat_single, "batched_qps": flat_batched}}
    if args.skip_hnsw:
        results.append(entry)
        print(json.dumps(entry), flush=True)
        continue
    before = rss_mib()
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(args.dim, args.m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(data)
    hnsw_build = time.perf_counter() - t
    hnsw_mib = rss_mib() - before
    sweep = []
    for ef in [int(e) for e in args.ef_search.split(",")]:
        hnsw.hnsw.efSearch = ef
        batched, found = batched_qps(hnsw, queries)
        sweep.append({
            "ef_search": ef,
            "recall_at_10": recall(found, truth),
            "single_qps": single_qps(hnsw, queries[: args.single]),
            "batched_qps": batched,
        })
    entry["hnsw"] = {"build_seconds": hnsw_build, "memory_mib": hnsw_mib, "sweep": sweep}
    results.append(entry)
    del flat, hnsw, data
    print(json.dumps(results[-1]), flush=True)

out = {
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    "threads": args.threads,
    "implementation": f"faiss-cpu {faiss.__version__} (numpy {np.__version__})",
    "dim": args.dim,
    "queries": args.queries,
    "single_queries": args.single,
    "m": args.m,
    "ef_construction": args.ef_construction,
    "sizes": results,
}
# Sizes measured before (other runs, e.g. --skip-hnsw at 1M) are kept unless remeasured.
try:
    with open(args.out) as f:
        kept = [s for s in json.load(f)["sizes"] if s["n"] not in {r["n"] for r in results}]
except (OSError, ValueError, KeyError):
    kept = []
out["sizes"] = sorted(kept + results, key=lambda s: s["n"])
with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
