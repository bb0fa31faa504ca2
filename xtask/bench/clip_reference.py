"""PyTorch reference for `cargo xtask bench clip`: transformers' CLIPModel with the exact
`openai/clip-vit-base-patch32` architecture and random weights, eager mode, float32, timed the
way the xtask times mm. Writes `clip-reference.json` beside this script.

Pinned: torch==2.15.0, transformers==4.57.1, and for the ONNX Runtime peer onnxruntime==1.32.0,
onnx==1.23.2. Run on the machine you compare on, with the same thread count as the xtask
(default: every core):

    python clip_reference.py [--threads N] [--min-seconds S] [--out FILE] [--no-ort] [--device cuda]

When onnxruntime is importable (and without `--no-ort`), both towers are also exported to ONNX
(TorchScript exporter, opset 17, dynamic batch and length) and timed in ONNX Runtime's CPU
provider with the same thread count, as the `ort_*` figures.

With `--device cuda` (what `cargo xtask bench clip --device cuda --run-reference` passes) the
model runs on the GPU, each timed call ends with `torch.cuda.synchronize()`, and neither the
host's peak memory nor ONNX Runtime (a CPU peer) is reported.

`cargo xtask bench clip --run-reference` runs it in the same sitting, alternating with mm.
"""

import argparse
import json
import os
import platform
import resource
import tempfile
import time
import warnings

import torch
import transformers
from transformers import CLIPConfig, CLIPModel

BATCH_TEXT = 32


def rate(fn, items, min_seconds=3.0, gpu=False):
    def call():
        fn()
        if gpu:  # wait for the kernels the call queued
            torch.cuda.synchronize()

    call()  # warm-up
    n, start = 0, time.perf_counter()
    while True:
        call()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 2:
            return items * n / elapsed


class ImageTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values=pixel_values)


class TextTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model.get_text_features(input_ids=input_ids)


def onnx_runtime_figures(model, threads, min_seconds, inputs):
    """ONNX Runtime's images/s and texts/s on the same inputs, or {} without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    out = {"onnxruntime": ort.__version__}
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    warnings.filterwarnings("ignore")  # the exporter's tracer notes on transformers' shape checks
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name, tower, example, axes in (
            ("image", ImageTower(model), inputs["images_per_s_b1"], {0: "batch"}),
            ("text", TextTower(model), inputs["texts_per_s_t12"], {0: "batch", 1: "tokens"}),
        ):
            path = os.path.join(tmp, f"{name}.onnx")
            torch.onnx.export(tower, (example,), path, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": axes}, dynamo=False, opset_version=17)
            sessions[name] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for key, x in inputs.items():
            session = sessions["image" if key.startswith("images") else "text"]
            feed = {"x": x.numpy()}
            out[f"ort_{key}"] = rate(lambda: session.run(None, feed), x.shape[0], min_seconds)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--no-ort", action="store_true", help="skip the ONNX Runtime figures")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip-reference.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = CLIPConfig(
        projection_dim=512,
        text_config=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                         max_position_embeddings=77, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=32, hidden_act="quick_gelu"),
    )
    gpu = args.device == "cuda"
    model = CLIPModel(config).eval().to(args.device)
    machine = torch.cuda.get_device_name() if gpu else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    out = {"machine": machine, "device": args.device,
           "threads": args.threads, "torch": torch.__version__,
           "implementation": f"torch {torch.__version__}, transformers {transformers.__version__}"}
    inputs = {}
    with torch.no_grad():
        for batch in (1, 32):
            px = torch.randn(batch, 3, 224, 224, device=args.device)
            inputs[f"images_per_s_b{batch}"] = px
            out[f"images_per_s_b{batch}"] = rate(lambda: model.get_image_features(pixel_values=px), batch, args.min_seconds, gpu)
        for tokens in (77, 12):
            ids = torch.randint(0, 49406, (BATCH_TEXT, tokens), device=args.device)
            ids[:, -1] = 49407
            inputs[f"texts_per_s_t{tokens}"] = ids
            out[f"texts_per_s_t{tokens}"] = rate(lambda: model.get_text_features(input_ids=ids), BATCH_TEXT, args.min_seconds, gpu)
    # Peak memory is PyTorch eager's: ONNX Runtime runs after it is read.
    if not gpu:
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not (args.no_ort or gpu):
        with torch.no_grad():
            out.update(onnx_runtime_figures(model, args.threads, args.min_seconds, inputs))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
