#!/bin/sh
# Load-independent parse cost: instructions (valgrind's callgrind) and allocations per pass
# over the benchmark corpus, for cairn-grammar and parse-dockerfile. Run from the repo root:
#   grammar/benches/callgrind.sh
# Each parser runs 20 passes and 0 passes; the difference / 20 is the cost of one pass
# (parse and drop of the AST), without the setup.
set -eu
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p cairn-grammar --example parse_count
bin=$target/release/examples/parse_count
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
refs() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" "$bin" "$1" "$2" 2>"$out/log"
    grep -o 'refs: *[0-9,]*' "$out/log" | tr -d ', ' | cut -d: -f2
}
for parser in cairn parse-dockerfile; do
    many=$(refs "$parser" 20)
    allocs=$(grep -o '[0-9]* allocations per pass' "$out/log")
    none=$(refs "$parser" 0)
    echo "$parser: $(( (many - none) / 20 )) instructions per pass, $allocs"
done
