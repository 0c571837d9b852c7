#!/usr/bin/env python3
"""Independent reference for thaw's BERT encoder: numpy straight from model.safetensors.

Computes the last hidden state of all-MiniLM-L6-v2 for a few sentences without any of
thaw's code (tokenized by the Python `tokenizers` package, the forward pass written
out below in numpy, float64) and writes crates/train/tests/fixtures/minilm_parity.json.
thaw-train's parity test compares its encoder against this file to 1e-4.

Usage: python3 -m venv .venv-parity && .venv-parity/bin/pip install -r scripts/requirements-parity.txt
       .venv-parity/bin/python scripts/parity_reference.py MODEL_DIR   (the folder with model.safetensors)
"""
import json
import math
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "hello world",
    "A three-hour cinema master class.",
    "The plot is thin, but the performances carry it anyway.",
    "Freezing layers rarely speeds training up as much as people hope.",
]


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(meta["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def encode(w, cfg, ids):
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    t = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    d = x.shape[-1] // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda h, name: h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q = lin(x, "attention.self.query").reshape(t, heads, d).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(t, heads, d).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(t, heads, d).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(t, heads * d)
        x = layer_norm(x + lin(ctx, "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def main():
    model_dir = sys.argv[1]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    weights = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    cases = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        hidden = encode(weights, cfg, ids)
        cases.append({"text": s, "ids": ids, "hidden": [[round(float(v), 7) for v in row] for row in hidden]})
    out = os.path.join(os.path.dirname(__file__), "..", "crates", "train", "tests", "fixtures", "minilm_parity.json")
    with open(out, "w") as f:
        json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2",
                   "generated_by": "scripts/parity_reference.py (numpy, float64)", "cases": cases}, f)
    print(f"wrote {out}: {len(cases)} sentences, {sum(len(c['ids']) for c in cases)} tokens")


if __name__ == "__main__":
    main()
