#!/usr/bin/env python3
"""Check a `thaw export` folder with Hugging Face transformers itself.

Every folder must load into its transformers class (AutoModel, AutoModelForMaskedLM) with no
missing, unexpected or mismatched key.

A job export (it has test_predictions.jsonl) is checked by its task (config.json's thaw.task):
- classification: the loading code of the folder's own README.md (the model card) is run as
  written (AutoModel and the head in classifier.safetensors), the test split (pairs too) is
  classified with it, and compared with thaw's: the same label on at least 99.5% of examples,
  logits within 1e-3;
- regression: the card's code scores the test split; thaw's predictions must agree within
  1e-3 of the target's standard deviation;
- multi_label: the card's code gives each test example its label set (sigmoid, at the
  threshold chosen on validation, config.json's thaw.threshold); the same set as thaw's on at
  least 99.5% of examples, logits within 1e-3;
- tokens: AutoModelForTokenClassification loads the folder with no missing or unexpected key,
  the card's code reads each test word's logits at its first token, and they are compared
  with thaw's: the same tag on at least 99.5% of words, logits within 1e-3.

A stage export (it has mlm_check.json): AutoModelForMaskedLM loads the folder and computes
the masked-LM loss on the fixed masks thaw used; it must match thaw's loss within 1e-4.

Exit status 0 when every check passes, 1 otherwise. Needs the pinned environment of
scripts/requirements-hf.txt:

    python3 -m venv .venv-hf && .venv-hf/bin/pip install -r scripts/requirements-hf.txt
    .venv-hf/bin/python scripts/check_export.py FOLDER [FOLDER ...]
"""

import inspect
import json
import re
import sys
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForTokenClassification

LABEL_AGREEMENT = 0.995
LOGIT_TOLERANCE = 1e-3
MLM_LOSS_TOLERANCE = 1e-4


def card_code(folder: Path) -> dict:
    """The model card's python block, executed: the loading code a user copies."""
    card = (folder / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    if not blocks:
        raise SystemExit(f"{folder}/README.md has no python block to run")
    namespace: dict = {}
    exec(compile(blocks[0], f"{folder}/README.md", "exec"), namespace)
    return namespace


def loads_cleanly(auto_class, folder: Path) -> bool:
    """The folder loads into its transformers class with no missing, unexpected or mismatched
    key (a bare encoder without the pooler its class would otherwise create)."""
    config = AutoConfig.from_pretrained(str(folder))
    model_class = auto_class._model_mapping[type(config)]
    kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters else {}
    _, info = auto_class.from_pretrained(str(folder), output_loading_info=True, **kwargs)
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    print(f"{folder}: {model_class.__name__} loads {'every key' if not problems else problems}")
    return not problems


def argmax(row):
    return max(range(len(row)), key=row.__getitem__)


def report(folder: Path, what: str, same: int, n: int, worst: float, tolerance: float) -> bool:
    ok = n > 0 and same / n >= LABEL_AGREEMENT and worst <= tolerance
    print(
        f"{folder}: {what}; same on {same}/{n} ({100 * same / max(n, 1):.2f} %, need {100 * LABEL_AGREEMENT} %); "
        f"max |difference| {worst:.2e} (need <= {tolerance:.1e}): {'OK' if ok else 'FAILED'}"
    )
    return ok


def in_batches(rows, compute, size=64):
    out = []
    for start in range(0, len(rows), size):
        out.extend(compute(rows[start : start + size]))
    return out


def texts_and_pairs(chunk):
    pairs = [r.get("text_pair") for r in chunk]
    return [r["text"] for r in chunk], (pairs if all(p is not None for p in pairs) else None)


def check_classifier(folder: Path, code: dict, rows: list, config: dict) -> bool:
    if not loads_cleanly(AutoModel, folder):
        return False
    tokenizer, encoder, weight, bias = code["load"](str(folder))
    id2label = {int(k): v for k, v in config["id2label"].items()}

    def compute(chunk):
        texts, pairs = texts_and_pairs(chunk)
        return code["logits"](texts, tokenizer, encoder, weight, bias, pairs).tolist()

    ours = in_batches(rows, compute)
    theirs = [r["logits"] for r in rows]
    same = sum(argmax(a) == argmax(b) for a, b in zip(ours, theirs))
    worst = max(abs(x - y) for a, b in zip(ours, theirs) for x, y in zip(a, b))
    n = len(rows)
    correct_hf = sum(id2label[argmax(a)] == r["label"] for a, r in zip(ours, rows))
    correct_thaw = sum(id2label[argmax(b)] == r["label"] for b, r in zip(theirs, rows))
    what = f"{n} test examples; transformers accuracy {correct_hf / n:.4f}, thaw {correct_thaw / n:.4f}; label"
    return report(folder, what, same, n, worst, LOGIT_TOLERANCE)


def check_regressor(folder: Path, code: dict, rows: list, config: dict) -> bool:
    if not loads_cleanly(AutoModel, folder):
        return False
    tokenizer, encoder, weight, bias = code["load"](str(folder))

    def compute(chunk):
        texts, pairs = texts_and_pairs(chunk)
        return code["scores"](texts, tokenizer, encoder, weight, bias, pairs).tolist()

    ours = in_batches(rows, compute)
    theirs = [r["prediction"] for r in rows]
    tolerance = LOGIT_TOLERANCE * config["thaw"]["target_sd"]
    close = sum(abs(a - b) <= tolerance for a, b in zip(ours, theirs))
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    truth = torch.tensor([r["score"] for r in rows])
    pearson = lambda p: torch.corrcoef(torch.stack([torch.tensor(p), truth]))[0, 1].item()  # noqa: E731
    what = f"{len(rows)} test examples; Pearson with the truth: transformers {pearson(ours):.4f}, thaw {pearson(theirs):.4f}; score"
    return report(folder, what, close, len(rows), worst, tolerance)


def check_multi_label(folder: Path, code: dict, rows: list, config: dict) -> bool:
    """The card's `label_sets` (sigmoid, the threshold chosen on validation) against thaw's
    logits decided at the same threshold: the same label set, logits within tolerance."""
    if not loads_cleanly(AutoModel, folder):
        return False
    tokenizer, encoder, weight, bias = code["load"](str(folder))
    threshold = config["thaw"]["threshold"]
    id2label = {int(k): v for k, v in config["id2label"].items()}

    def compute(chunk):
        texts, pairs = texts_and_pairs(chunk)
        logits = code["logits"](texts, tokenizer, encoder, weight, bias, pairs).tolist()
        sets = code["label_sets"](texts, tokenizer, encoder, weight, bias, pairs)
        return list(zip(logits, sets))

    ours = in_batches(rows, compute)
    thaw_sets = [[id2label[j] for j, x in enumerate(r["logits"]) if 1 / (1 + torch.exp(torch.tensor(-x)).item()) >= threshold]
                 for r in rows]
    same = sum(sorted(s) == sorted(t) for (_, s), t in zip(ours, thaw_sets))
    worst = max(abs(x - y) for (a, _), r in zip(ours, rows) for x, y in zip(a, r["logits"]))

    def micro_f1(sets):
        tp = sum(len(set(s) & set(r["labels"])) for s, r in zip(sets, rows))
        predicted, real = sum(len(s) for s in sets), sum(len(r["labels"]) for r in rows)
        return 2 * tp / (predicted + real) if predicted + real else 0.0

    what = (f"{len(rows)} test examples at threshold {threshold}; micro-F1 transformers {micro_f1([s for _, s in ours]):.4f}, "
            f"thaw {micro_f1(thaw_sets):.4f}; label set")
    return report(folder, what, same, len(rows), worst, LOGIT_TOLERANCE)


def check_tagger(folder: Path, code: dict, rows: list, config: dict) -> bool:
    if not loads_cleanly(AutoModelForTokenClassification, folder):
        return False
    tokenizer, model = code["load"](str(folder))
    ours = in_batches(rows, lambda chunk: code["word_logits"]([r["tokens"] for r in chunk], tokenizer, model))
    label2id = config["label2id"]
    same = n = right_hf = right_thaw = 0
    worst = 0.0
    for row, words_ours in zip(rows, ours):
        for word_ours, word_theirs, tag in zip(words_ours, row["logits"], row["tags"]):
            if (word_ours is None) != (word_theirs is None):
                worst = float("inf")  # truncation cut another word
                continue
            if word_ours is None:
                continue
            a = word_ours.tolist()
            n += 1
            same += argmax(a) == argmax(word_theirs)
            right_hf += argmax(a) == label2id[tag]
            right_thaw += argmax(word_theirs) == label2id[tag]
            worst = max(worst, max(abs(x - y) for x, y in zip(a, word_theirs)))
    what = f"{len(rows)} test sentences, {n} tagged words; token accuracy transformers {right_hf / max(n, 1):.4f}, thaw {right_thaw / max(n, 1):.4f}; tag"
    return report(folder, what, same, n, worst, LOGIT_TOLERANCE)


def check_job(folder: Path) -> bool:
    config = json.loads((folder / "config.json").read_text())
    rows = [json.loads(line) for line in (folder / "test_predictions.jsonl").read_text().splitlines() if line]
    task = config.get("thaw", {}).get("task", "classification")
    checks = {"classification": check_classifier, "regression": check_regressor, "tokens": check_tagger,
              "multi_label": check_multi_label}
    return checks[task](folder, card_code(folder), rows, config)


def check_masked_lm(folder: Path) -> bool:
    if not loads_cleanly(AutoModelForMaskedLM, folder):
        return False
    check = json.loads((folder / "mlm_check.json").read_text())
    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    ids = check["input_ids"]
    longest = max(len(d) for d in ids)
    pad = model.config.pad_token_id or 0
    input_ids = torch.tensor([d + [pad] * (longest - len(d)) for d in ids])
    mask = torch.tensor([[1] * len(d) + [0] * (longest - len(d)) for d in ids])
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        inputs["token_type_ids"] = torch.zeros_like(input_ids)
    with torch.inference_mode():
        logits = model(**inputs).logits
    picked = torch.stack([logits[doc, token] for doc, token in check["positions"]])
    loss = torch.nn.functional.cross_entropy(picked, torch.tensor(check["targets"])).item()
    ok = abs(loss - check["loss"]) <= MLM_LOSS_TOLERANCE
    print(
        f"{folder}: masked-LM loss on {len(check['targets'])} fixed masks: transformers {loss:.6f}, thaw {check['loss']:.6f}, "
        f"difference {abs(loss - check['loss']):.2e} (need <= {MLM_LOSS_TOLERANCE:.0e}): {'OK' if ok else 'FAILED'}"
    )
    return ok


def main() -> int:
    folders = [Path(a) for a in sys.argv[1:]]
    if not folders:
        print(__doc__)
        return 2
    results = []
    for folder in folders:
        if (folder / "mlm_check.json").is_file():
            results.append(check_masked_lm(folder))
        elif (folder / "test_predictions.jsonl").is_file():
            results.append(check_job(folder))
        else:
            print(f"{folder}: not a thaw export (no test_predictions.jsonl or mlm_check.json)")
            results.append(False)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
