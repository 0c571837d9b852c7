"""Reference values for thaw-metrics, computed by the field's own implementations:
scikit-learn (accuracy, macro-F1, multi-label micro/macro F1), seqeval 1.2.2 in its default
mode (entity micro P/R/F1, per-type scores, token accuracy) and scipy (Pearson, Spearman).

Random but seeded cases, edge cases included (ties, constant columns, I- after O, types
switching inside a span, E-/S- tags, empty predictions). Writes
crates/metrics/tests/fixtures/reference.json; crates/metrics/tests/reference.rs reads it.

    .venv-hf/bin/pip install -r scripts/requirements-metrics.txt
    .venv-hf/bin/python scripts/make_metric_fixtures.py
"""
import json
import pathlib

import numpy as np
import scipy.stats
import seqeval.metrics
from sklearn.metrics import accuracy_score, f1_score

rng = np.random.default_rng(2026)
out = pathlib.Path(__file__).resolve().parent.parent / "crates/metrics/tests/fixtures/reference.json"


def classification_cases():
    cases = []
    for n, k in [(50, 2), (200, 3), (37, 5), (10, 4)]:
        truth = rng.integers(0, k, n).tolist()
        predicted = [t if rng.random() < 0.6 else int(rng.integers(0, k)) for t in truth]
        cases.append({
            "num_labels": k, "truth": truth, "predicted": predicted,
            "accuracy": accuracy_score(truth, predicted),
            "macro_f1": f1_score(truth, predicted, average="macro", labels=list(range(k)), zero_division=0),
        })
    return cases


TYPES = ["PER", "LOC", "ORG", "MISC"]


def random_tags(length, noisy):
    tags = []
    for _ in range(length):
        r = rng.random()
        kind = TYPES[int(rng.integers(0, len(TYPES)))]
        if r < 0.55:
            tags.append("O")
        elif r < 0.75:
            tags.append("B-" + kind)
        elif r < 0.95 or not noisy:
            prev = tags[-1] if tags else "O"
            # Mostly continue the previous type; sometimes switch (an ill-formed span).
            same = prev[2:] if prev != "O" and rng.random() < 0.8 else kind
            tags.append("I-" + same)
        else:
            tags.append(("E-" if rng.random() < 0.5 else "S-") + kind)
    return tags


def perturb(tags):
    out = []
    for t in tags:
        r = rng.random()
        if r < 0.12:
            out.append("O")
        elif r < 0.2:
            out.append("B-" + TYPES[int(rng.integers(0, len(TYPES)))])
        elif r < 0.26:
            out.append("I-" + TYPES[int(rng.integers(0, len(TYPES)))])
        else:
            out.append(t)
    return out


def entity_cases():
    cases = []
    for sentences, noisy in [(20, False), (60, True), (5, True)]:
        truth = [random_tags(int(rng.integers(1, 15)), noisy) for _ in range(sentences)]
        predicted = [perturb(s) for s in truth]
        cases.append(entity_case(truth, predicted))
    truth = [["B-PER", "I-PER", "O"], ["I-LOC", "I-LOC", "O", "B-ORG"]]
    cases.append(entity_case(truth, [["O"] * len(s) for s in truth]))  # all-O baseline
    return cases


def entity_case(truth, predicted):
    report = seqeval.metrics.classification_report(truth, predicted, output_dict=True, zero_division=0)
    by_type = {
        k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": int(v["support"])}
        for k, v in report.items() if not k.endswith(" avg")
    }
    return {
        "truth": truth, "predicted": predicted,
        "entities": [list(e) for e in seqeval.metrics.sequence_labeling.get_entities(truth)],
        "precision": seqeval.metrics.precision_score(truth, predicted, zero_division=0),
        "recall": seqeval.metrics.recall_score(truth, predicted, zero_division=0),
        "f1": seqeval.metrics.f1_score(truth, predicted, zero_division=0),
        "token_accuracy": seqeval.metrics.accuracy_score(truth, predicted),
        "by_type": by_type,
    }


def correlation_cases():
    cases = []
    for n in [5, 40, 300]:
        truth = rng.normal(2.5, 1.2, n)
        predicted = 0.7 * truth + rng.normal(0, 0.8, n)
        cases.append(correlation_case(truth.tolist(), predicted.tolist()))
    ties_t = [float(x) for x in rng.integers(0, 6, 80)]  # STS-B-like 0-5 scores with ties
    ties_p = [round(t + float(rng.normal(0, 1.0)), 1) for t in ties_t]
    cases.append(correlation_case(ties_t, ties_p))
    return cases


def correlation_case(truth, predicted):
    return {
        "truth": truth, "predicted": predicted,
        "pearson": float(scipy.stats.pearsonr(predicted, truth).statistic),
        "spearman": float(scipy.stats.spearmanr(predicted, truth).statistic),
        "rmse": float(np.sqrt(np.mean((np.array(predicted) - np.array(truth)) ** 2))),
    }


def multi_label_cases():
    cases = []
    for n, labels in [(30, 3), (120, 6)]:
        truth = rng.random((n, labels)) < 0.3
        predicted = np.where(rng.random((n, labels)) < 0.75, truth, ~truth)
        predicted[0] = False  # a row with no label predicted
        cases.append({
            "truth": truth.tolist(), "predicted": predicted.tolist(),
            "micro_f1": f1_score(truth, predicted, average="micro", zero_division=0),
            "macro_f1": f1_score(truth, predicted, average="macro", zero_division=0),
        })
    return cases


fixtures = {
    "versions": {"seqeval": "1.2.2", "scipy": scipy.__version__, "numpy": np.__version__,
                 "scikit-learn": __import__("sklearn").__version__},
    "classification": classification_cases(),
    "entities": entity_cases(),
    "correlation": correlation_cases(),
    "multi_label": multi_label_cases(),
}
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(fixtures, separators=(",", ":")) + "\n")
print(f"wrote {out}")
