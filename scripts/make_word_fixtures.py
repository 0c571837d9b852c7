#!/usr/bin/env python3
"""Word-tagging tokenization of every family fixture, by transformers: the fixture the test
`every_familys_tokenizer_splits_words_as_transformers_does` compares thaw against.

For each tiny checkpoint in crates/train/tests/fixtures/families, the tokenizer is prepared as
`thaw export` writes it for a word-tagging model (a byte-level pre-tokenizer with
`add_prefix_space` set in tokenizer.json and tokenizer_config.json), loaded with AutoTokenizer,
and given pre-split sentences with `is_split_into_words=True`. Written: the input ids and each
word's first token (what a token classifier's label sits on), to
crates/train/tests/fixtures/families/words.json.

    .venv-hf/bin/python scripts/make_word_fixtures.py
"""

import json
import shutil
import tempfile
from pathlib import Path

from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ROOT / "crates/train/tests/fixtures/families"
SENTENCES = [
    ["Hello", "world", "from", "@Paris", "2016!"],
    ["New", "York", "Knicks", "beat", "the", "Lakers", "#NBA"],
    ["héllo", "naïve", "café", "'s", "U.S.A.", "x"],
]


def space_before_words(pre):
    if pre.get("type") == "ByteLevel":
        pre["add_prefix_space"] = True
    for inner in pre.get("pretokenizers", []) or []:
        space_before_words(inner)


def exported_tokenizer(folder: Path, into: Path):
    """The family's tokenizer files as a word-tagging export holds them."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            shutil.copy(folder / name, into / name)
    tokenizer = json.loads((into / "tokenizer.json").read_text())
    if tokenizer.get("pre_tokenizer"):
        space_before_words(tokenizer["pre_tokenizer"])
    (into / "tokenizer.json").write_text(json.dumps(tokenizer))
    config_path = into / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        if "add_prefix_space" in config:
            config["add_prefix_space"] = True
        config_path.write_text(json.dumps(config))
    return AutoTokenizer.from_pretrained(str(into))


def main():
    out = {"sentences": SENTENCES, "families": {}}
    for folder in sorted(p for p in FAMILIES.iterdir() if (p / "tokenizer.json").is_file()):
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = exported_tokenizer(folder, Path(tmp))
            rows = []
            for words in SENTENCES:
                encoding = tokenizer(words, is_split_into_words=True)
                starts = [None] * len(words)
                for position, word in enumerate(encoding.word_ids()):
                    if word is not None and starts[word] is None:
                        starts[word] = position
                rows.append({"input_ids": encoding["input_ids"], "word_starts": starts})
            out["families"][folder.name] = rows
    (FAMILIES / "words.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {FAMILIES / 'words.json'} for {len(out['families'])} families")


if __name__ == "__main__":
    main()
