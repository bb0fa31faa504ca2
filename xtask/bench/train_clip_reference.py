"""PyTorch reference for `cargo xtask bench train-clip`: the emoji CLIP of
`configs/clip-emoji.json` as a transformers `CLIPModel`, trained on random inputs of the
training shapes with the same optimizer as mm (AdamW, betas 0.9/0.999, eps 1e-5 as Burn's
default, the config's weight decay and learning rate, each parameter's gradient clipped to the
config's norm as Burn's `GradientClippingConfig::Norm` does, logit scale clamped to
[0, ln 100] after every step), eager mode, float32, timed the way the xtask times mm.

Pinned: torch==2.15.0, transformers==4.57.1.

    python train_clip_reference.py [--threads N] [--min-seconds S] [--out FILE] [--profile FILE]

`--profile FILE` also records 5 steps with torch.profiler and writes its table of operators
by self CPU time to FILE (docs/performance.md shows the breakdown).

`cargo xtask bench train-clip --run-reference` runs it in the same sitting, alternating with mm.
"""

import argparse
import json
import math
import os
import platform
import resource
import time

import torch
import transformers
from transformers import CLIPConfig, CLIPModel

HERE = os.path.dirname(os.path.abspath(__file__))
EOT = 8  # as xtask/src/bench/train_clip.rs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--profile", help="write torch.profiler's operator table of 5 steps here")
    ap.add_argument("--out", default=os.path.join(HERE, "train_clip-reference.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(os.path.join(HERE, "..", "..", "configs", "clip-emoji.json")) as f:
        cfg = json.load(f)
    m, t = cfg["model"], cfg["train"]
    keep = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "hidden_act",
            "layer_norm_eps", "initializer_range")
    text = {k: m["text_config"][k] for k in keep + ("vocab_size", "max_position_embeddings")}
    vision = {k: m["vision_config"][k] for k in keep + ("image_size", "patch_size", "num_channels")}
    config = CLIPConfig(projection_dim=m["projection_dim"], logit_scale_init_value=m["logit_scale_init_value"],
                        text_config=text, vision_config=vision)
    model = CLIPModel(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=t["lr"], betas=(0.9, 0.999), eps=1e-5,
                            weight_decay=t["weight_decay"])
    b, size, context = t["batch_size"], vision["image_size"], text["max_position_embeddings"]
    pixels = torch.randn(b, 3, size, size)
    ids = (torch.arange(b * context).reshape(b, context) * 7919) % 49406
    ids[:, EOT:] = 49407  # end of text, then padding with the same id (argmax pooling finds EOT)

    def step():
        loss = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in model.parameters():
            if p.grad is not None:
                torch.nn.utils.clip_grad_norm_([p], t["grad_clip_norm"])
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))

    step()
    step()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < args.min_seconds:
        step()
        n += 1
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads,
        "implementation": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "train_samples_per_s": b * n / (time.perf_counter() - start),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                step()
        with open(args.profile, "w") as f:
            f.write(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))


if __name__ == "__main__":
    main()
