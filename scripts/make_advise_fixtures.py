#!/usr/bin/env python3
"""Reference values for thaw-advise's regularized H-score: scikit-learn's LedoitWolf (its
shrinkage and shrunk covariance) and numpy, on small matrices, written to
crates/advise/tests/fixtures/hscore.json.

The H-score is Ibrahim et al.'s regularized form, tr(pinv(cov_alpha(f)) (1 - alpha) cov(E[f|y]))
with f centred, E[f|y] each example's class mean, numpy's cov (denominator n - 1).
(crates/advise/tests/fixtures/logme.json was computed once with thuml/LogME's own numpy code,
LogME._fit_fixed_point at commit 3a08950; that code is not part of this repository.)

    .venv-hf/bin/pip install -r scripts/requirements-metrics.txt
    .venv-hf/bin/python scripts/make_advise_fixtures.py
"""
import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.covariance import LedoitWolf

OUT = Path(__file__).resolve().parent.parent / "crates/advise/tests/fixtures/hscore.json"


def h_score(f, labels):
    f = f - f.mean(axis=0, keepdims=True)
    lw = LedoitWolf(assume_centered=False).fit(f)
    g = np.zeros_like(f)
    for c in np.unique(labels):
        g[labels == c] = f[labels == c].mean(axis=0)
    cov_g = np.cov(g, rowvar=False)
    score = np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * cov_g))
    return float(score), float(lw.shrinkage_), lw.covariance_


def main():
    rng = np.random.default_rng(11)
    cases = []
    for name, n, d, c, signal in [("separated, 80 x 5", 80, 5, 3, 2.0), ("overlapping, 80 x 5", 80, 5, 3, 0.5),
                                  ("more features than examples, 30 x 50", 30, 50, 2, 1.0)]:
        labels = rng.integers(0, c, n)
        # Correlated features (a random mixing), as a network's are, so the shrinkage is partial.
        f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        f[:, 0] += signal * labels
        score, shrinkage, covariance = h_score(f, labels)
        cases.append({"name": name, "features": f.tolist(), "labels": labels.tolist(), "classes": c,
                      "h_score": score, "shrinkage": shrinkage, "covariance_0_0": float(covariance[0, 0])})
        print(f"{name}: H-score {score:.6f}, shrinkage {shrinkage:.6f}")
    source = f"scikit-learn {sklearn.__version__} LedoitWolf and numpy {np.__version__} (default_rng(11))"
    OUT.write_text(json.dumps({"source": source, "cases": cases}) + "\n")


if __name__ == "__main__":
    main()
