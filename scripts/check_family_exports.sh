#!/usr/bin/env bash
# Every encoder family's exports, checked by transformers itself. For each tiny checkpoint in
# crates/train/tests/fixtures/families: a small sweep on Rotten Tomatoes (freeze 0..L, task
# MLM where the checkpoint has its own masked-LM head), `thaw export --best` (the classifier:
# AutoModel and the card's code must give thaw's test logits within 1e-3) and, with MLM,
# `thaw export --stage` (AutoModelForMaskedLM must give thaw's masked-LM loss within 1e-4),
# and a word tagger on WNUT-2016 exported as the family's *ForTokenClassification (its
# tokenizer as a tagger's: AutoModelForTokenClassification must give thaw's per-word logits
# within 1e-3; ModernBERT's class has a head thaw's tagger lacks, so it is refused and
# skipped here), then scripts/check_export.py on every folder.
#
# Needs the release build (`cargo build --release`) and the pinned transformers environment
# (`python3 -m venv .venv-hf && .venv-hf/bin/pip install -r scripts/requirements-hf.txt`).
# Usage: scripts/check_family_exports.sh [FAMILY ...]   (default: every family)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
thaw="$root/target/release/thaw"
python="${PYTHON:-$root/.venv-hf/bin/python}"
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(bert roberta xlm-roberta distilbert electra electra-discriminator deberta-v2 deberta-v2-lmhead modernbert)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
folders=()
for family in "${families[@]}"; do
    model="$root/crates/train/tests/fixtures/families/$family"
    case "$family" in electra-discriminator) mlm='["none"]' ;; *) mlm='["none", "task"]' ;; esac
    cat > "$work/$family.toml" <<TOML
[sweep]
name = "$family"
[model]
path = "$model"
[data]
builtin = "rotten_tomatoes"
max_length = 32
max_validation = 64
max_test = 200
[train]
epochs = 2
batch_size = 16
pooling = "mean"
[intermediate.task]
steps = 10
batch_size = 8
[grid]
freeze = "all"
intermediate = $mlm
seeds = [1]
lr = { full = [1e-3], partial = [1e-3], head_only = [3e-3] }
train_size = [200]
TOML
    (cd "$work" && "$thaw" run "$family.toml" >/dev/null 2>"$family.log") || { cat "$work/$family.log"; exit 1; }
    (cd "$work" && "$thaw" export "$family.toml" --best --out "export-$family" 2>/dev/null >/dev/null)
    folders+=("$work/export-$family")
    if [ "$mlm" != '["none"]' ]; then
        stage=$(sqlite3 "$work/results/$family.db" "SELECT key FROM stages LIMIT 1")
        (cd "$work" && "$thaw" export "$family.toml" --stage "$stage" --out "stage-$family" 2>/dev/null >/dev/null)
        folders+=("$work/stage-$family")
    fi
    [ "$family" = modernbert ] && continue
    cat > "$work/tags-$family.toml" <<TOML
[sweep]
name = "tags-$family"
[model]
path = "$model"
[data]
builtin = "wnut_2016"
task = "tokens"
max_length = 32
max_validation = 64
max_test = 150
[train]
epochs = 1
batch_size = 16
[grid]
freeze = [0]
seeds = [1]
lr = { full = [1e-3] }
train_size = [200]
TOML
    (cd "$work" && "$thaw" run "tags-$family.toml" >/dev/null 2>"tags-$family.log") || { cat "$work/tags-$family.log"; exit 1; }
    (cd "$work" && "$thaw" export "tags-$family.toml" --best --out "tags-export-$family" 2>/dev/null >/dev/null)
    folders+=("$work/tags-export-$family")
done
"$python" "$root/scripts/check_export.py" "${folders[@]}"
