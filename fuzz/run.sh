#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 20) from the seeded corpus. Needs a nightly
# toolchain and cargo-fuzz (installed here when missing). A crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the run; reproduce with `cargo +nightly fuzz run TARGET FILE`.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
[ -x ../target/debug/cairn ] || (cd .. && cargo build --locked --bin cairn)
./seed.sh
cargo +nightly fuzz build --release
for t in dockerfile expand dockerignore ir_decode tar_unpack; do
    echo "== fuzz $t for ${secs}s"
    cargo +nightly fuzz run --release "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 2>&1 | tail -3
done
