"""PyTorch reference for `cargo xtask bench video`: torchvision's `r3d_18` and the guide's
CNN+LSTM (torchvision `resnet18` frames, 2-layer LSTM 512) at their published widths, forward
on 2 clips of 8 frames of 112x112, eval mode; and AdamW training steps of the small models
`cargo xtask train video` uses (first-stage width 16, 8 frames of 64x64, batch 16, LSTM 128),
eager mode, float32, timed the way the xtask times mm. Writes `video-reference.json`.

Pinned: torch==2.15.0, torchvision==0.29.2.

    python video_reference.py [--threads N] [--min-seconds S] [--out FILE]
"""

import argparse
import json
import os
import platform
import resource
import time

import torch
import torchvision
from torch import nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.models.video import r3d_18
from torchvision.models.video.resnet import BasicBlock as BasicBlock3d, BasicStem, Conv3DSimple, VideoResNet


def rate(fn, items, min_seconds):
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 2:
            return items * n / elapsed


class CnnLstm(nn.Module):
    """The guide's VideoClassifier with a ResNet-18 frame encoder of any width."""

    def __init__(self, num_classes, width=64, hidden=512):
        super().__init__()
        self.spatial_cnn = resnet18() if width == 64 else narrow_resnet18(width)
        self.spatial_cnn.fc = nn.Identity()
        self.temporal_lstm = nn.LSTM(8 * width, hidden, num_layers=2, batch_first=True, dropout=0.5)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, videos):
        b, t, c, h, w = videos.shape
        f = self.spatial_cnn(videos.reshape(b * t, c, h, w)).reshape(b, t, -1)
        out, _ = self.temporal_lstm(f)
        return self.classifier(out[:, -1])


def narrow_resnet18(width):
    """torchvision's ResNet-18 with every stage `width / 64` as wide."""
    model = ResNet(BasicBlock, [2, 2, 2, 2])
    # Rebuild with narrower stages: torchvision's ResNet hard-codes 64..512, so scale by hand.
    model.inplanes = width
    model.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.layer1 = model._make_layer(BasicBlock, width, 2)
    model.layer2 = model._make_layer(BasicBlock, 2 * width, 2, stride=2)
    model.layer3 = model._make_layer(BasicBlock, 4 * width, 2, stride=2)
    model.layer4 = model._make_layer(BasicBlock, 8 * width, 2, stride=2)
    return model


def narrow_r3d(width, num_classes):
    """torchvision's R3D-18 with every stage `width / 64` as wide."""
    model = VideoResNet(BasicBlock3d, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, num_classes=num_classes)
    model.inplanes = width
    model.stem = nn.Sequential(nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                               nn.BatchNorm3d(width), nn.ReLU(inplace=True))
    model.layer1 = model._make_layer(BasicBlock3d, Conv3DSimple, width, 2, stride=1)
    model.layer2 = model._make_layer(BasicBlock3d, Conv3DSimple, 2 * width, 2, stride=2)
    model.layer3 = model._make_layer(BasicBlock3d, Conv3DSimple, 4 * width, 2, stride=2)
    model.layer4 = model._make_layer(BasicBlock3d, Conv3DSimple, 8 * width, 2, stride=2)
    model.fc = nn.Linear(8 * width, num_classes)
    return model


def train_rate(model, channels_first, min_seconds):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.999), eps=1e-5, weight_decay=1e-4)
    x = torch.randn(16, 8, 3, 64, 64)
    if channels_first:
        x = x.transpose(1, 2).contiguous()
    y = torch.arange(16) % 8

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < min_seconds:
        step()
        n += 1
    return 16 * n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "video-reference.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "threads": args.threads,
           "implementation": f"torch {torch.__version__}, torchvision {torchvision.__version__}"}
    with torch.no_grad():
        r3d = r3d_18(num_classes=400).eval()
        x = torch.randn(2, 3, 8, 112, 112)
        out["r3d18_clips_per_s"] = rate(lambda: r3d(x), 2, args.min_seconds)
        lstm = CnnLstm(400).eval()
        x = torch.randn(2, 8, 3, 112, 112)
        out["cnn_lstm_clips_per_s"] = rate(lambda: lstm(x), 2, args.min_seconds)
    out["r3d_small_train_samples_per_s"] = train_rate(narrow_r3d(16, 8), True, args.min_seconds)
    out["cnn_lstm_small_train_samples_per_s"] = train_rate(CnnLstm(8, width=16, hidden=128), False, args.min_seconds)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
