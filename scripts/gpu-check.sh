#!/usr/bin/env bash
# One command for a person with a GPU: builds thaw with the GPU feature, runs the GPU test set
# on the device, times one epoch per freeze depth on the GPU and on flex (the CPU backend) in
# the same way, runs the quickstart sweep on the GPU, and prints one table.
#
#   scripts/gpu-check.sh
#
# Sizes (environment): THAW_GPU_CHECK_TRAIN training examples per timed epoch (default 2000),
# THAW_GPU_CHECK_QUICKSTART=0 skips the quickstart (it trains 90+ jobs). On lavapipe (Mesa's
# Vulkan on the CPU) use a few dozen examples and skip the quickstart: it checks the script,
# not a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
n_train=${THAW_GPU_CHECK_TRAIN:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Without a desktop session the Vulkan/EGL loaders print "XDG_RUNTIME_DIR is invalid or not
# set" from every test process (the thaw binary sets one itself): give them a private one.
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="$(mktemp -d)"

echo "== build: cargo build --release --features wgpu"
cargo build --release --features wgpu --quiet
command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|deviceType' | sed 's/^ */   /' || true

echo "== GPU tests"
cargo test --release --workspace --features wgpu --test wgpu_device --test gpu_end_to_end --quiet

echo "== one epoch per freeze depth, $n_train examples (the freeze_sweep benchmark's first table)"
# Run through `cargo test --release`, so the build the tests above made serves it.
for backend in wgpu flex; do
    cargo test --release --workspace --features wgpu --bench freeze_sweep --quiet -- \
        "$n_train" 0 64 32 "$backend" | tee "$work/$backend.txt"
done

quickstart="skipped (THAW_GPU_CHECK_QUICKSTART=0)"
if [ "${THAW_GPU_CHECK_QUICKSTART:-1}" != 0 ]; then
    echo "== quickstart on the GPU: thaw run experiments/quickstart.toml --backend wgpu"
    started=$(date +%s)
    target/release/thaw run experiments/quickstart.toml --backend wgpu --db "$work/quickstart.db" \
        --no-report
    quickstart="$(( $(date +%s) - started )) s"
fi

# Table 1 rows are "| k | params | no cache ex/s | no cache epoch s | prefix s | cache ex/s | ...".
rows() { grep -E '^\| [0-9]+ \|' "$1" | awk -F'|' '{gsub(/ /, ""); print $2, $4, $7}'; }
echo
echo "GPU check: $(vulkaninfo --summary 2>/dev/null | grep -m1 deviceName | sed 's/.*= //' || echo 'device: see above'), $n_train training examples, max_length 64, batch 32"
echo
echo "| frozen layers k | flex ex/s | wgpu ex/s | wgpu / flex | flex, prefix cached ex/s | wgpu, prefix cached ex/s |"
echo "|---|---|---|---|---|---|"
# Both runs list the depths in the same order: k flex flex-cached k wgpu wgpu-cached.
paste -d' ' <(rows "$work/flex.txt") <(rows "$work/wgpu.txt") |
    awk '{printf "| %s | %.1f | %.1f | %.2f | %.1f | %.1f |\n", $1, $2, $5, $5 / $2, $3, $6}'
echo
echo "quickstart sweep on the GPU (wall time): $quickstart"
