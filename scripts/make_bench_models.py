#!/usr/bin/env python3
"""Random checkpoints of every encoder family at MiniLM's size, for the speed benchmarks.

Each family's tiny parity fixture (crates/train/tests/fixtures/families/<family>) gives the
tokenizer and the family's config; this script scales the config to all-MiniLM-L6-v2's size
(6 layers, hidden 384, 12 heads, feed-forward 1536; ModernBERT's GeGLU at 1024 so that its
feed-forward costs the same FLOPs; DeBERTa with 256 position buckets as v3), builds the
family's *ForMaskedLM with transformers' own initialisation (seed 0) and saves it with the
tokenizer. The weights are random: the benchmarks time the work, which the values do not
change.

    .venv-hf/bin/python scripts/make_bench_models.py [--out .cache/bench-models]
    cargo bench --bench freeze_sweep -- 384 0 --model .cache/bench-models/roberta
    .venv-hf/bin/python scripts/bench_pytorch.py --model .cache/bench-models/roberta --freeze 0,3

Needs the pinned environment of scripts/requirements-hf.txt.
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForMaskedLM

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates/train/tests/fixtures/families"
FAMILIES = ["bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta-v2", "modernbert"]

# all-MiniLM-L6-v2's size.
LAYERS, HIDDEN, HEADS, FFN = 6, 384, 12, 1536


def scaled(config: dict) -> dict:
    """The family's config at MiniLM's size."""
    kind = config["model_type"]
    if kind == "distilbert":
        config.update(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN, max_position_embeddings=512)
        return config
    config.update(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN)
    if kind in ("roberta", "xlm-roberta"):
        config["max_position_embeddings"] = 514
    elif kind in ("bert", "electra"):
        config["max_position_embeddings"] = 512
    if kind == "electra":
        config["embedding_size"] = 128
    if kind == "deberta-v2":
        config.update(
            position_buckets=256, max_relative_positions=-1, max_position_embeddings=512, pooler_hidden_size=HIDDEN
        )
    if kind == "modernbert":
        # GeGLU: Wi is 2 x intermediate wide, Wo reads intermediate: 3 x 1024 = 2 x 1536 FLOPs.
        config.update(intermediate_size=1024, local_attention=128, max_position_embeddings=8192)
        config["layer_types"] = ["full_attention" if i % 3 == 0 else "sliding_attention" for i in range(LAYERS)]
    return config


def build(family: str, out: Path) -> None:
    source = FIXTURES / family
    config = scaled(json.loads((source / "config.json").read_text()))
    target = out / family
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(str(target)))
    model.save_pretrained(str(target), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, target / name)
    params = sum(p.numel() for p in model.parameters())
    print(f"{target}: {type(model).__name__}, {params / 1e6:.1f}M parameters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache/bench-models")
    parser.add_argument("--only", nargs="*", choices=FAMILIES)
    args = parser.parse_args()
    for family in args.only or FAMILIES:
        build(family, args.out)


if __name__ == "__main__":
    main()
