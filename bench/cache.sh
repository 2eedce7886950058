#!/usr/bin/env bash
# Scenario a (bench/scenarios/a) cold with a remote cache against cold without (issue 14):
# run by hand, not in CI. One Debian `docker-registry` on 127.0.0.1; store A builds once
# with `--cache-to type=registry,ref=…,mode=max`; then, REPS times each, a fresh store
# holding only the base builds `-t bench-a` without `--cache-from` and with it. Printed:
# the wall-clock medians, and for the cached build the HTTP requests (round trips) and
# the bytes the registry sent, from its access log. Appended to BENCHMARKS.md.
#
#   sudo bench/cache.sh                    # REPS=5
#   REPS=3 CAIRN_BIN=target/debug/cairn BENCH_OUT=/tmp/try.md bench/cache.sh
#   SCENARIO=debian bench/cache.sh         # the real-world one, below
#
# SCENARIO=debian: a Debian base (the docker-archive bench/compare.sh makes with
# mmdebstrap and keeps in $BENCH_CACHE, default /var/tmp/cairn-bench-cache) and
# `apt-get install python3-minimal` from the Debian mirror, then a COPY and a RUN of the
# installed python: megabyte layers, a step that costs seconds.
#
# Needs root (the sandbox, overlay mounts) and docker-registry, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
out=${BENCH_OUT:-BENCHMARKS.md}
if [ -n "${CAIRN_BIN:-}" ]; then
    cairn=$(realpath "$CAIRN_BIN")
else
    cargo build --release --locked -q
    cairn="${CARGO_TARGET_DIR:-$PWD/target}/release/cairn"
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/cairn-cache-bench.XXXXXX")
reg_pid=
cleanup() {
    set +e
    [ -n "$reg_pid" ] && kill "$reg_pid" && wait "$reg_pid" 2>/dev/null
    awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SCENARIO=${SCENARIO:-a}
if [ "$SCENARIO" = debian ]; then
    base_archive="${BENCH_CACHE:-/var/tmp/cairn-bench-cache}/debian-bookworm-minbase.docker.tar"
    [ -s "$base_archive" ] || { echo "bench/cache.sh: no $base_archive; run bench/compare.sh (scenario f) once" >&2; exit 1; }
    ctx="$work/debian"
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM debian-bench:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3-minimal && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY app.py /app/
RUN python3 -c 'import py_compile; py_compile.compile("/app/app.py", cfile="/app/app.pyc")'
EOF
    echo 'print("hello from the real-world scenario")' >"$ctx/app.py"
else
    # The base image and scenario a's context, as bench/compare.sh makes them.
    mkdir -p "$work/base"
    cp examples/base/Dockerfile "$work/base/"
    cp /bin/busybox "$work/base/busybox"
    CAIRN_ROOT="$work/cairn-base" "$cairn" build --progress quiet -t busybox:latest \
        -o "type=oci,dest=$work/base-oci.tar" "$work/base" >/dev/null
    base_archive="$work/base-oci.tar"
    ctx="$work/a"
    cp -r bench/scenarios/a "$ctx"
    for d in 1 2 3 4 5; do
        mkdir -p "$ctx/src/d$d"
        for f in $(seq 1 10); do
            printf 'file %d/%d\n%0200d\n' "$d" "$f" "$((d * 100 + f))" >"$ctx/src/d$d/f$f.txt"
        done
    done
    mkdir -p "$ctx/conf"
    for f in 1 2 3 4 5; do echo "setting$f = $f" >"$ctx/conf/c$f.conf"; done
fi

# The registry.
. bench/registry.sh
start_registry "$work/registry"
host=$reg_host
cache="$host/bench/cache:$SCENARIO"

fresh() {
    rm -rf "$work/store"
    CAIRN_ROOT="$work/store" "$cairn" load -i "$base_archive" >/dev/null
}
build() {
    CAIRN_ROOT="$work/store" DOCKER_CONFIG="$work/docker" CAIRN_REGISTRIES_CONFIG="$work/none.json" \
        "$cairn" build --progress quiet --insecure-registry "$host" -t "bench-$SCENARIO:latest" "$@" "$ctx" >"$work/out" 2>&1 ||
        { cat "$work/out" >&2; exit 1; }
}
# Seconds of one build, on stdout.
timed() {
    local t0=$EPOCHREALTIME
    build "$@"
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", b - a }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Access-log requests since line $1: "count bytes".
requests_since() {
    tail -n +"$(($1 + 1))" "$work/registry/log" | grep -E '^[0-9.]+ - - \[' |
        awk '{ n++; if ($(NF-2) ~ /^[0-9]+$/) b += $(NF-2) } END { printf "%d %d\n", n, b }'
}

fresh
build --cache-to "type=registry,ref=$cache,mode=max"
# Two outputs: the tagged image only (cached layers stay lazy), and the image also
# exported as an OCI archive (every layer's bytes needed).
oci=(-o "type=oci,dest=$work/image.tar")
for f in without with without-oci with-oci; do : >"$work/$f"; done
for i in $(seq "$REPS"); do
    for v in "" -oci; do
        extra=()
        [ -n "$v" ] && extra=("${oci[@]}")
        fresh
        timed "${extra[@]}" >>"$work/without$v"
        fresh
        before=$(wc -l <"$work/registry/log")
        timed --cache-from "$cache" "${extra[@]}" >>"$work/with$v"
        requests_since "$before" >"$work/traffic$v"
    done
done
read -r reqs bytes <"$work/traffic"
read -r reqs_oci bytes_oci <"$work/traffic-oci"
without=$(median <"$work/without")
with=$(median <"$work/with")
without_oci=$(median <"$work/without-oci")
with_oci=$(median <"$work/with-oci")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo
    echo "## Remote build cache, scenario $SCENARIO ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r))"
    echo
    echo "\`SCENARIO=$SCENARIO REPS=$REPS bench/cache.sh\`: cairn \`$cairn\`; $(nproc) CPUs; load $load_start at the start, $load_end at the end."
    echo "A fresh store holding only the base builds scenario $SCENARIO; \"with\" adds \`--cache-from\` of a"
    echo "\`mode=max\` export another store made (Debian's docker-registry on 127.0.0.1)."
    echo
    echo "| scenario $SCENARIO, cold | median (s) | requests to the registry | bytes sent by the registry |"
    echo "|---|---:|---:|---:|"
    echo "| without a remote cache | $without | 0 | 0 |"
    echo "| with \`--cache-from\` | $with | $reqs | $bytes |"
    echo "| without, and \`-o type=oci\` | $without_oci | 0 | 0 |"
    echo "| with \`--cache-from\`, and \`-o type=oci\` | $with_oci | $reqs_oci | $bytes_oci |"
} >>"$out"
tail -n 10 "$out"
