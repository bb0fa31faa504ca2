"""Reference timings for `cargo xtask bench audio`: librosa's log-mel (power_to_db of
melspectrogram, top_db 80) of 60 s of float32 audio in the two settings mm benchmarks.

Pinned: librosa 0.11.0, numpy 2.4.6, scipy 1.17.1. Run on the machine you compare on, with
the threads mm gets:

    python xtask/bench/audio_reference.py --threads 2 --out xtask/bench/audio-reference.json
"""

import argparse
import json
import os
import platform
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--out", default="xtask/bench/audio-reference.json")
parser.add_argument("--min-seconds", type=float, default=3.0)
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import librosa  # noqa: E402
import numpy as np  # noqa: E402


def signal(sr):
    rng = np.random.default_rng(60)
    t = np.arange(sr * 60) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def best_of(fn, min_seconds):
    fn()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < min_seconds or best == float("inf"):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


out = {
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    "threads": args.threads,
    "implementation": f"librosa {librosa.__version__} (numpy {np.__version__})",
}
for key, sr, n_fft, hop, n_mels in (("whisper_60s_seconds", 16000, 400, 160, 80),
                                    ("librosa_60s_seconds", 22050, 2048, 512, 128)):
    y = signal(sr)

    def run():
        s = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
        librosa.power_to_db(s, top_db=80.0)

    out[key] = best_of(run, args.min_seconds)
with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps(out, indent=1))
