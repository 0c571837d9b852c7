#!/usr/bin/env bash
# thaw against PyTorch for every encoder family at MiniLM's size, on this CPU: for each
# family, thaw's bench (k = 0 and 3, evaluation) and scripts/bench_pytorch.py on the same
# random checkpoint and data, then the ratio table bench_pytorch.py prints (thaw / PyTorch).
# The checkpoints come from scripts/make_bench_models.py (run first when missing).
#
# Needs the release build and the pinned transformers environment (.venv-hf).
# Usage: scripts/bench_families.sh [FAMILY ...] | tee results/bench-families.txt
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv-hf/bin/python}"
models="$root/.cache/bench-models"
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(bert roberta xlm-roberta distilbert electra deberta-v2 modernbert)
[ -d "$models/${families[0]}" ] || "$python" "$root/scripts/make_bench_models.py" --out "$models" >/dev/null
mkdir -p "$root/results"
for family in "${families[@]}"; do
    echo "== $family"
    out="$root/results/bench-thaw-$family.txt"
    (cd "$root" && cargo bench --quiet --bench freeze_sweep -- 384 0 --model "$models/$family" --depths 0,3 --no-ops) > "$out" 2>/dev/null
    "$python" "$root/scripts/bench_pytorch.py" --model "$models/$family" --freeze 0,3 --threads "$(nproc)" --thaw "$out" | sed -n '/^thaw (/,$p'
done
