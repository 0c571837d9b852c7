#!/usr/bin/env bash
# How often `thaw advise` is right: for every sweep file given (each already run, its
# database in results/), run the advice, write the report, and print one table row from the
# report's "The advice before the sweep" section: the pick, whether it lies in the verdict's
# best group, Kendall's tau between predicted and measured validation means, and the
# advice's compute against the grid's estimate and the sweep's measured worker time.
#
#   scripts/evaluate_advice.sh experiments/quickstart.toml experiments/snli-pairs.toml ...
set -euo pipefail
cd "$(dirname "$0")/.."
thaw=target/release/thaw
[ -x "$thaw" ] || cargo build --release
echo "| sweep | pick | in best group | Kendall's tau | advice s | share of grid estimate | share of measured worker time |"
echo "|---|---|---|---|---|---|---|"
for file in "$@"; do
  name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$file" | head -1)
  "$thaw" advise "$file" > "results/$name.advice.txt"
  "$thaw" report "$file" > /dev/null
  python3 - "results/$name/report.md" "$name" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split("## The advice before the sweep")[1].split("\n## ")[0]
spent = re.search(r"It spent (\d+) s: ([\d.]+) % of the (\d+) s the whole grid was estimated to train(?:, and ([\d.]+) % of the (\d+) s)?", text)
pick = re.search(r"The pick, \*(.*?)\*, is \*\*(in|not in)\*\*", text)
tau = re.search(r"Kendall's tau between predicted and measured validation [^:]*: ([-\d.]+|undefined)", text)
print(f"| {sys.argv[2]} | {pick.group(1)} | {'yes' if pick.group(2) == 'in' else 'no'} | {tau.group(1)} "
      f"| {spent.group(1)} | {spent.group(2)} % | {spent.group(4) or '-'} % |")
PY
done
