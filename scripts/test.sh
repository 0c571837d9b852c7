#!/usr/bin/env bash
# The test command: every test, the GPU backend's (`--features wgpu`, run on a Vulkan device)
# and the second CPU backend's (`--features ndarray`) included, and the cluster tests, which
# start real servers. Installed here from Debian's packages when missing: Mesa's lavapipe
# (Vulkan on the CPU: correct, slow, enough for the small GPU tests) when no Vulkan driver is
# present, PostgreSQL's server (the store tests start throwaway clusters), Slurm and munge (a
# one-node cluster for `thaw slurm`), Chromium (the browser tests of `thaw serve` and report.html).
# Extra arguments go to `cargo test` (a test name filter, `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"

# install PACKAGE... : apt-get install, refreshing the package lists once if needed.
install() {
    if ! command -v apt-get >/dev/null; then
        echo "error: $* missing and no apt-get here; install them, or run the CPU tests alone:" >&2
        echo "cargo test --release --workspace -- --skip postgres --skip slurm" >&2
        exit 1
    fi
    echo "== installing $*"
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get install -y -q "$@" >/dev/null ||
        { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q "$@" >/dev/null; }
}

vulkan_driver_present() {
    compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null || compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null
}

missing=()
vulkan_driver_present || missing+=(mesa-vulkan-drivers)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
command -v pg_dump >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/pg_dump" >/dev/null || missing+=(postgresql-client)
{ command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ]; } || missing+=(slurm-wlm)
{ command -v munged >/dev/null || [ -x /usr/sbin/munged ]; } || missing+=(munge)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] || install "${missing[@]}"
# Debian's postgresql package starts a system cluster of its own; the tests start theirs.

# Without a desktop session the Vulkan/EGL loaders print "XDG_RUNTIME_DIR is invalid or not
# set" from every test process (the thaw binary sets one itself): give them a private one.
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="$(mktemp -d)"

exec cargo test --release --workspace --features wgpu,ndarray "$@"
