"""diffusers reference for `cargo xtask bench diffusion`: the model folder the xtask writes (the
default `train diffusion` UNet and an emoji-CLIP-sized text tower, random weights) run with
diffusers and transformers (eager, float32), timed the way the xtask times mm (one warm-up,
then rounds until `--min-seconds`):

- UNet forward on 16 noised 32 px images (inputs from the same formula);
- 50-step DDIM generation of 4 prompts at guidance 3, as diffusers' pipelines run it (text
  states of the prompts and of "", both branches in one batch, `uncond + w * (cond - uncond)`).

Pinned: torch==2.15.0, transformers==4.57.1, diffusers==0.35.2.

    cargo xtask bench diffusion            # writes $TMPDIR/mm-bench-diffusion-model
    python diffusion_reference.py --model $TMPDIR/mm-bench-diffusion-model [--threads N]

`cargo xtask bench diffusion --run-reference` runs it in the same sitting, alternating with mm.
"""

import argparse
import json
import os
import platform
import resource
import time

import diffusers
import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
FORWARD_BATCH = 16
PROMPTS = ["a red circle", "a blue triangle", "a green rectangle", "a yellow circle"]
STEPS = 50


def rate(items, min_seconds, f):
    f()
    start = time.perf_counter()
    n = 0
    while True:
        f()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 2:
            return items * n / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--out", default=os.path.join(HERE, "diffusion-reference.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(args.model, "unet")).eval()
    text = CLIPTextModel.from_pretrained(os.path.join(args.model, "text_encoder")).eval()
    tokenizer = CLIPTokenizerFast.from_pretrained(os.path.join(args.model, "tokenizer"))
    scheduler = DDIMScheduler.from_pretrained(os.path.join(args.model, "scheduler"))
    side = unet.config.sample_size
    per = 3 * side * side
    index = torch.arange(FORWARD_BATCH * per, dtype=torch.int64)
    sample = (((index * 7919) % 255).float() / 127.5 - 1.0).reshape(FORWARD_BATCH, 3, side, side)
    timesteps = torch.tensor([i * 61 % 1000 for i in range(FORWARD_BATCH)], dtype=torch.float32)

    def encode(prompts):
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        return text(ids)[0]

    figures = {}
    with torch.no_grad():
        context = encode([PROMPTS[0]] * FORWARD_BATCH)
        figures["unet_forward_images_per_s"] = rate(
            FORWARD_BATCH, args.min_seconds, lambda: unet(sample, timesteps, context).sample)

        def generate():
            cond = encode(PROMPTS)
            uncond = encode([""] * len(PROMPTS))
            states = torch.cat([uncond, cond])
            generator = torch.Generator().manual_seed(0)
            latents = torch.randn(len(PROMPTS), 3, side, side, generator=generator)
            scheduler.set_timesteps(STEPS)
            for t in scheduler.timesteps:
                noise = unet(torch.cat([latents, latents]), t, states).sample
                u, c = noise.chunk(2)
                latents = scheduler.step(u + 3.0 * (c - u), t, latents).prev_sample
            return latents

        figures["ddim50_images_per_s"] = rate(len(PROMPTS), args.min_seconds, generate)
    for k, v in figures.items():
        print(k, v)
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.update(implementation=f"diffusers {diffusers.__version__}, torch {torch.__version__} eager",
                   threads=args.threads, machine=f"{platform.machine()} {os.cpu_count()} cores")
    with open(args.out, "w") as f:
        json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
