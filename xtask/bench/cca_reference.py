"""Reference timings for `cargo xtask bench cca`: linear CCA (k = 8) on the seeded
20,000 x 128 / 96 views, by scipy's closed form (covariances + scipy.linalg.eigh of the
generalized eigenproblem, as in crates/mm-core/tests/fixtures/cca/generate.py) and by
scikit-learn's iterative CCA.

Pinned: numpy 2.4.6, scipy 1.17.1, scikit-learn 1.9.1. Run on the machine you compare on,
after `cargo xtask data synth cca`, with the threads mm gets (2 on the CI machine):

    python xtask/bench/cca_reference.py --threads 2 --out xtask/bench/cca-reference.json
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--out", default="xtask/bench/cca-reference.json")
parser.add_argument("--min-seconds", type=float, default=3.0)
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402  (after the thread variables)
import scipy  # noqa: E402
import sklearn  # noqa: E402
from sklearn.cross_decomposition import CCA  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "crates/mm-core/tests/fixtures/cca"))
from generate import closed_form  # noqa: E402

root = pathlib.Path(__file__).parents[2]
x = np.load(root / "datasets/synth/cca/x.npy").astype(np.float64)
y = np.load(root / "datasets/synth/cca/y.npy").astype(np.float64)


def best_of(fn, min_seconds):
    fn()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < min_seconds or best == float("inf"):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


fit = best_of(lambda: closed_form(x, y, 8, 0.0), args.min_seconds)
t = time.perf_counter()
CCA(n_components=8, max_iter=500, scale=False).fit(x, y)
sklearn_seconds = time.perf_counter() - t
out = {
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    "threads": args.threads,
    "implementation": f"scipy {scipy.__version__} eigh closed form (numpy {np.__version__})",
    "fit_seconds": fit,
    "sklearn_cca_seconds": sklearn_seconds,
    "sklearn": sklearn.__version__,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}
pathlib.Path(args.out).write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
