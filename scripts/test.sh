#!/usr/bin/env bash
# The test command: every test, the GPU backend's included (`--features wgpu`), which run on
# a Vulkan device. A machine without a GPU gets Mesa's lavapipe (Vulkan on the CPU: correct,
# slow, enough for the small GPU tests), installed here when no Vulkan driver is present.
# Extra arguments go to `cargo test` (a test name filter, `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

vulkan_driver_present() {
    compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null || compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null
}

if ! vulkan_driver_present; then
    echo "== no Vulkan driver found: installing Mesa's (mesa-vulkan-drivers: lavapipe, Vulkan on the CPU)"
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    if ! command -v apt-get >/dev/null; then
        echo "error: no Vulkan driver and no apt-get here. Install your GPU's Vulkan driver (or Mesa's" >&2
        echo "lavapipe), or run the CPU tests alone: cargo test --release --workspace" >&2
        exit 1
    fi
    $as_root apt-get install -y -q mesa-vulkan-drivers >/dev/null ||
        { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q mesa-vulkan-drivers >/dev/null; }
fi

# Without a desktop session the Vulkan/EGL loaders print "XDG_RUNTIME_DIR is invalid or not
# set" from every test process (the thaw binary sets one itself): give them a private one.
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="$(mktemp -d)"

exec cargo test --release --workspace --features wgpu "$@"
