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
# FUZZ_SEED fixes libFuzzer's random seed, so a short run (CI) walks the same inputs on every
# machine and a failure there is one anybody can reproduce; unset, each run explores anew.
seed=()
[ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in dockerfile expand dockerignore ir_decode tar_unpack; do
    echo "== fuzz $t for ${secs}s ${seed[*]}"
    if ! cargo +nightly fuzz run --release "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 "${seed[@]}" >"$log" 2>&1; then
        # What failed, and the input that makes it fail: the end of libFuzzer's report.
        grep -E 'ERROR: libFuzzer|panicked at|SUMMARY' "$log" | head -5
        grep -A12 '^Failing input' "$log" | head -14
        echo "fuzz/run.sh: target $t failed; reproduce with: cargo +nightly fuzz run $t FILE" >&2
        exit 1
    fi
    tail -1 "$log"
done
