"""Writes the committed seed corpus of the fuzz targets into seeds/<target>/.

Pinned: Pillow 11.3.0, numpy 2.4.6, soundfile 0.14.0, safetensors 0.6.2, torch 2.15.0.
The index_folder snapshot seeds (`seeds/index_folder/{exact,hnsw}`: 0x00 + an
`index.mmi` of two 16-d entries) come from our own CLI:
  cargo xtask index build --model TINY_CLIP --images TWO_PNGS --out DIR --kind KIND --m 4
and are committed; the log seeds are written here.
Run from fuzz/: python make_seeds.py
"""

import io
import json
import os
import struct
import zlib

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from safetensors.numpy import save as save_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    folder = os.path.join(HERE, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def image_bytes(fmt, mode="RGB", **kw):
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 255, (6, 5, channels), dtype=np.uint8)
    img = Image.fromarray(pixels.squeeze() if channels == 1 else pixels)
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def images():
    put("image", "rgb.png", image_bytes("PNG"))
    put("image", "rgba.png", image_bytes("PNG", "RGBA"))
    put("image", "gray.png", image_bytes("PNG", "L"))
    put("image", "rgb.jpg", image_bytes("JPEG", quality=80))
    put("image", "rgb.gif", image_bytes("GIF"))
    put("image", "rgb.webp", image_bytes("WEBP", lossless=True))


def texts():
    for i, text in enumerate(
        [
            "a photo of a red circle",
            "A DOG!!! on the beach, 2024 :-)",
            "naïve café über straße 東京 😀 <|endoftext|>",
            "what colour is the shape?" * 40,
            "\t\n  spaces   and\u00a0nbsp  ",
        ]
    ):
        put("tokenizers", f"text{i}.txt", text.encode())


def manifests():
    lines = {
        "image_caption.jsonl": [
            {"image": "a.png", "captions": ["a red circle"], "label": "circle"},
            {"image": "sub/b.jpg", "captions": ["x", "y"], "split": "train"},
        ],
        "question_answer.jsonl": [
            {"image": "a.png", "question": "what shape?", "answer": "circle", "type": "shape"}
        ],
        "audio_label.jsonl": [{"audio": "a.wav", "label": "dog"}],
    }
    for name, records in lines.items():
        put("manifest", name, "".join(json.dumps(r) + "\n" for r in records).encode())


def small_safetensors():
    return save_safetensors(
        {
            "text_model.embeddings.position_ids": np.arange(4, dtype=np.int64)[None],
            "logit_scale": np.array(2.6, dtype=np.float32),
            "w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "h": np.arange(4, dtype=np.float16),
        }
    )


def weights():
    put("weights", "safetensors", b"\x00" + small_safetensors())
    index = {"metadata": {}, "weight_map": {"w": "model-00001-of-00001.safetensors"}}
    put("weights", "index_json", b"\x01" + json.dumps(index).encode())
    out = io.BytesIO()
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16)}, out)
    put("weights", "pytorch_bin", b"\x02" + out.getvalue())


def model_folders():
    config_path = os.path.join(
        HERE, "..", "crates", "mm-vl", "tests", "fixtures", "hf_clip", "quick_gelu", "config.json"
    )
    with open(config_path, "rb") as f:
        config = f.read()
    body = small_safetensors()
    put("model_folder", "hf_clip", struct.pack("<H", len(config)) + config + body)


def y4m():
    header = b"YUV4MPEG2 W4 H2 F25:1 Ip A1:1 C420jpeg\n"
    frame = b"FRAME\n" + bytes(range(8)) + bytes([128, 128]) + bytes([100, 150])
    put("y4m", "420.y4m", header + frame * 2)
    header = b"YUV4MPEG2 W2 H2 F30000:1001 C444\n"
    put("y4m", "444.y4m", header + b"FRAME\n" + bytes(12))


def audio():
    t = np.linspace(0, 0.02, 320, endpoint=False)
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([tone, -tone], axis=1)
    for name, data, fmt, subtype in [
        ("pcm16.wav", tone, "WAV", "PCM_16"),
        ("float.wav", stereo, "WAV", "FLOAT"),
        ("tone.flac", tone, "FLAC", "PCM_16"),
        ("tone.ogg", tone, "OGG", "VORBIS"),
    ]:
        out = io.BytesIO()
        sf.write(out, data, 16000, format=fmt, subtype=subtype)
        put("audio", name, out.getvalue())


def index_logs():
    """Log records (docs: crates/mm-retrieval/src/wal.rs) after the target's whole 4-d snapshot."""
    vectors = np.arange(8, dtype=np.float32)
    meta = json.dumps([{"n": 1}, {"n": 2}]).encode()
    body = struct.pack("<IQQQQ", 0x4D4D5752, 8, 2, vectors.nbytes, len(meta)) + vectors.tobytes() + meta
    record = body + struct.pack("<I", zlib.crc32(body))
    for pick, kind in [(1, "exact"), (3, "hnsw")]:
        put("index_folder", f"log_{kind}", bytes([pick]) + record + record[:20])


def http():
    png = image_bytes("PNG")

    def multipart(fields):
        body = b""
        for name, value, filename in fields:
            body += b"--mmfuzz\r\n"
            disposition = f'Content-Disposition: form-data; name="{name}"'
            if filename:
                disposition += f'; filename="{filename}"'
            body += disposition.encode() + b"\r\n\r\n" + value + b"\r\n"
        return body + b"--mmfuzz--\r\n"

    put("http", "classify", b"\x00" + multipart([("image", png, "a.png"), ("labels", b"dog,cat", None)]))
    put("http", "search_image", b"\x01" + multipart([("image", png, "a.png"), ("k", b"3", None)]))
    put("http", "index", b"\x02" + multipart([("image", png, "a.png"), ("metadata", b'{"n": 1}', None)]))
    put("http", "search_text", b"\x03" + json.dumps({"text": "a red circle", "k": 3}).encode())
    put("http", "vqa", b"\x04" + json.dumps({"question": "what shape?"}).encode())


def tfjs():
    # The tiny random graph of the TF.js parity test (its own make_tiny_graph.py writes it).
    tiny = os.path.join(HERE, "..", "crates", "mm-vision", "tests", "fixtures", "tfjs", "tiny")
    with open(os.path.join(tiny, "model.json"), "rb") as f:
        graph = f.read()
    with open(os.path.join(tiny, "weights.bin"), "rb") as f:
        weights = f.read()
    put("tfjs", "tiny", struct.pack("<H", len(graph)) + graph + weights)


def qt_resources():
    # Made by Qt's own resource compiler (crates/mm-data/tests/fixtures/qt_resources/make_rcc.sh).
    fixtures = os.path.join(HERE, "..", "crates", "mm-data", "tests", "fixtures", "qt_resources")
    for v in (1, 2, 3):
        with open(os.path.join(fixtures, f"v{v}.rcc"), "rb") as f:
            put("qt_resources", f"v{v}.rcc", f.read())


if __name__ == "__main__":
    images()
    texts()
    manifests()
    weights()
    model_folders()
    y4m()
    audio()
    http()
    index_logs()
    qt_resources()
    tfjs()
