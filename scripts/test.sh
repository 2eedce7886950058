#!/usr/bin/env bash
# The test command of the README, and what CI runs: installs the Debian packages the tests
# use when missing (root; the tests need root anyway for namespaces and overlay mounts),
# checks formatting and lints, then runs every test. Offline apart from apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v dot >/dev/null || need+=(graphviz)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
# The registry tests run Debian's distribution registry, htpasswd and openssl on loopback.
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
# RUN steps get a network namespace of their own through slirp4netns.
command -v slirp4netns >/dev/null || need+=(slirp4netns)
# Rootless builds map subordinate ids with newuidmap/newgidmap; setpriv runs cairn as a user.
command -v newuidmap >/dev/null || need+=(uidmap)
command -v setpriv >/dev/null || need+=(util-linux)
# The SSH forwarding test starts ssh-agent and builds a static C client.
command -v ssh-agent >/dev/null || need+=(openssh-client)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
# The example frontend (examples/frontends/) and the hostile ones in the tests are Python.
command -v python3 >/dev/null || need+=(python3)
# Multi-platform builds (issue 15) run arm64 steps under QEMU through binfmt_misc; the
# tests fetch Debian's busybox-static:arm64 themselves (dpkg --add-architecture arm64).
dpkg -s qemu-user-static >/dev/null 2>&1 || need+=(qemu-user-static)
dpkg -s binfmt-support >/dev/null 2>&1 || need+=(binfmt-support)
# `build --timeline` pictures are rendered by headless Chromium in the tests.
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/test.sh: missing ${need[*]}; run as root (sudo) so they can be installed" >&2
        exit 1
    fi
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== cargo fmt --check, clippy -D warnings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace --locked
# A short fuzz run of every target (fuzz/README.md); the fuzz targets need a nightly
# toolchain, which this machine kind has. CAIRN_FUZZ_SECONDS=0 leaves it out; the seed is
# fixed so that every machine runs the same inputs (FUZZ_SEED= explores afresh).
secs=${CAIRN_FUZZ_SECONDS:-10}
if [ "$secs" != 0 ]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        echo "== fuzz (${secs}s per target)"
        FUZZ_SEED=${FUZZ_SEED-1} ./fuzz/run.sh "$secs"
    else
        echo "== fuzz: not run (no nightly toolchain; install one to run fuzz/run.sh)"
    fi
fi
