"""Build the CLIP BPE `tokenizer.json` shipped with mm-text (gzipped beside this script).

Source: the BPE vocabulary `open_clip/bpe_simple_vocab_16e6.txt.gz` inside the PyPI wheel of
`open-clip-torch` (fetched by package name with `pip download`), the same merges OpenAI CLIP
uses. The vocabulary is laid out as OpenAI's `SimpleTokenizer` does (256 byte symbols, the same
with `</w>`, the merges, then the two special tokens) and handed to transformers'
`CLIPTokenizerFast`, whose `tokenizer.json` is what HF CLIP checkpoints ship.

Pinned: open-clip-torch==3.3.0 (wheel sha256 below), transformers==4.57.1, tokenizers==0.22.1.

    python build_clip_tokenizer.py            # downloads the wheel into a temp dir
    python build_clip_tokenizer.py WHEEL.whl  # or uses the given wheel
"""

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

OPEN_CLIP = "open-clip-torch==3.3.0"
WHEEL_SHA256 = "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce"
HERE = os.path.dirname(os.path.abspath(__file__))


def bytes_to_unicode():
    """The reversible byte -> printable-character table of GPT-2 / CLIP BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def fetch_wheel(dest):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", dest, OPEN_CLIP], check=True)
    return os.path.join(dest, [f for f in os.listdir(dest) if f.endswith(".whl")][0])


def vocab_and_merges(wheel):
    digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest} != pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")).decode("utf-8")
    merges = [tuple(m.split()) for m in text.split("\n")[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def build_fast_tokenizer(wheel, workdir):
    """Returns transformers' CLIPTokenizerFast built from the wheel's vocabulary."""
    from transformers import CLIPTokenizerFast

    vocab, merges = vocab_and_merges(wheel)
    vocab_file = os.path.join(workdir, "vocab.json")
    merges_file = os.path.join(workdir, "merges.txt")
    json.dump(vocab, open(vocab_file, "w", encoding="utf-8"), ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return CLIPTokenizerFast(vocab_file=vocab_file, merges_file=merges_file)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        wheel = sys.argv[1] if len(sys.argv) > 1 else fetch_wheel(tmp)
        fast = build_fast_tokenizer(wheel, tmp)
        raw = fast.backend_tokenizer.to_str().encode("utf-8")
        out = os.path.join(HERE, "clip-tokenizer.json.gz")
        with open(out, "wb") as f:
            # mtime=0 keeps the archive byte-identical across runs.
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as gz:
                gz.write(raw)
        print(f"wrote {out} ({len(raw)} bytes of JSON)")


if __name__ == "__main__":
    main()
