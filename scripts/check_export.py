#!/usr/bin/env python3
"""Check a `thaw export` folder with Hugging Face transformers itself.

Every folder must load into its transformers class (AutoModel, AutoModelForMaskedLM) with no
missing, unexpected or mismatched key.

A classifier export (it has test_predictions.jsonl): the loading code of the folder's own
README.md (the model card) is run as written, the test split is classified with it, and
the predictions are compared with thaw's: the same label on at least 99.5% of examples,
logits within 1e-3.

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
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

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


def check_classifier(folder: Path) -> bool:
    if not loads_cleanly(AutoModel, folder):
        return False
    code = card_code(folder)
    tokenizer, encoder, weight, bias = code["load"](str(folder))
    config = json.loads((folder / "config.json").read_text())
    id2label = {int(k): v for k, v in config["id2label"].items()}
    rows = [json.loads(line) for line in (folder / "test_predictions.jsonl").read_text().splitlines() if line]
    ours = []
    for start in range(0, len(rows), 64):
        chunk = [r["text"] for r in rows[start : start + 64]]
        ours.extend(code["logits"](chunk, tokenizer, encoder, weight, bias).tolist())
    theirs = [r["logits"] for r in rows]
    same = sum(max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__) for a, b in zip(ours, theirs))
    worst = max(abs(x - y) for a, b in zip(ours, theirs) for x, y in zip(a, b))
    correct_hf = sum(id2label[max(range(len(a)), key=a.__getitem__)] == r["label"] for a, r in zip(ours, rows))
    correct_thaw = sum(id2label[max(range(len(b)), key=b.__getitem__)] == r["label"] for b, r in zip(theirs, rows))
    n = len(rows)
    ok = same / n >= LABEL_AGREEMENT and worst <= LOGIT_TOLERANCE
    print(
        f"{folder}: {n} test examples; transformers accuracy {correct_hf / n:.4f}, thaw {correct_thaw / n:.4f}; "
        f"same label on {same}/{n} ({100 * same / n:.2f} %, need {100 * LABEL_AGREEMENT} %); "
        f"max |logit difference| {worst:.2e} (need <= {LOGIT_TOLERANCE:.0e}): {'OK' if ok else 'FAILED'}"
    )
    return ok


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
            results.append(check_classifier(folder))
        else:
            print(f"{folder}: not a thaw export (no test_predictions.jsonl or mlm_check.json)")
            results.append(False)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
