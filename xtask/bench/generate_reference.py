"""transformers reference for `cargo xtask bench generate`: greedy and beam-5 captioning
(`VisionEncoderDecoderModel.generate`, eager, float32, key/value cache on) of the model folder
the xtask writes (the default captioner's architecture with random weights), on the same 8
images (pixels from the same formula), timed the way the xtask times mm: one warm-up round,
then rounds until `--min-seconds`; tokens per second of the returned captions.

Pinned: torch==2.15.0, transformers==4.57.1.

    cargo xtask bench generate            # writes $TMPDIR/mm-bench-generate-model
    python generate_reference.py --model $TMPDIR/mm-bench-generate-model [--threads N]

`cargo xtask bench generate --run-reference` runs it in the same sitting, alternating with mm.
"""

import argparse
import json
import os
import platform
import resource
import time

import torch
import transformers
from transformers import VisionEncoderDecoderModel

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = 8
MAX_NEW_TOKENS = 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--out", default=os.path.join(HERE, "generate-reference.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = VisionEncoderDecoderModel.from_pretrained(args.model).eval()
    side = model.config.encoder.image_size
    per = 3 * side * side
    index = torch.arange(IMAGES * per, dtype=torch.int64)
    pixels = (((index * 7919) % 255).float() / 127.5 - 1.0).reshape(IMAGES, 3, side, side)
    eos = model.generation_config.eos_token_id
    figures = {}
    for key, beams in (("greedy_tokens_per_s", 1), ("beam5_tokens_per_s", 5)):
        def run():
            tokens = 0
            with torch.no_grad():
                for k in range(IMAGES):
                    out = model.generate(pixel_values=pixels[k:k + 1], num_beams=beams,
                                         max_new_tokens=MAX_NEW_TOKENS, length_penalty=1.0,
                                         early_stopping=False, do_sample=False)
                    seq = out[0, 1:].tolist()
                    tokens += seq.index(eos) + 1 if eos in seq else len(seq)
            return tokens
        run()
        start = time.perf_counter()
        tokens, rounds = 0, 0
        while rounds < 2 or time.perf_counter() - start < args.min_seconds:
            tokens += run()
            rounds += 1
        figures[key] = tokens / (time.perf_counter() - start)
        print(key, figures[key], "tokens per caption", tokens / (rounds * IMAGES))
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.update(implementation=f"transformers {transformers.__version__} generate(), torch {torch.__version__} eager",
                   threads=args.threads, machine=f"{platform.machine()} {os.cpu_count()} cores")
    with open(args.out, "w") as f:
        json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
