#!/usr/bin/env bash
# cairn against Buildah on the same Dockerfiles (bench/scenarios/{a,b,c}): run by hand, not
# in CI. Both tools build from the same busybox base (built by cairn from Debian's
# busybox-static, exported as an OCI archive and pulled into Buildah's store from that file;
# no network) and both store a tagged image (`-t`). Buildah runs as
# `buildah bud --isolation chroot --layers` on overlay storage under a private root. The
# tools alternate (odd repetitions cairn first, even ones Buildah first); the medians, the
# cairn/Buildah ratios and cairn's peak RSS are printed and appended to BENCHMARKS.md.
#
#   sudo bench/compare.sh            # REPS=5 by default
#   REPS=9 BENCH_NOTE="quiet machine" bench/compare.sh
#   REPS=1 BENCH_OUT=/tmp/try.md bench/compare.sh     # a dry run, BENCHMARKS.md untouched
#   CAIRN_BIN=/path/to/cairn bench/compare.sh          # another build (before/after a change)
#
# Needs root (both tools' sandboxes and overlay mounts); installs buildah, time and
# busybox-static when missing. Everything lives in one temp directory that is unmounted
# and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
out=${BENCH_OUT:-BENCHMARKS.md}
if [ "$(id -u)" != 0 ]; then
    echo "bench/compare.sh: needs root (sandboxes and overlay mounts of both tools)" >&2
    exit 1
fi
need=()
command -v buildah >/dev/null || need+=(buildah)
[ -x /usr/bin/time ] || need+=(time)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -n "${CAIRN_BIN:-}" ]; then
    cairn=$(realpath "$CAIRN_BIN")
else
    cargo build --release --locked -q
    cairn="${CARGO_TARGET_DIR:-$PWD/target}/release/cairn"
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/cairn-bench.XXXXXX")
B=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver overlay)
cleanup() {
    set +e
    "${B[@]}" rm --all >/dev/null 2>&1
    "${B[@]}" rmi --all --force >/dev/null 2>&1
    # Whatever is still mounted below $work (a build interrupted halfway), deepest first.
    awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- base image and contexts
mkdir -p "$work/base" "$work/res"
cp examples/base/Dockerfile "$work/base/"
cp /bin/busybox "$work/base/busybox"
CAIRN_ROOT="$work/cairn-base" "$cairn" build --progress quiet -t busybox:latest \
    -o "type=oci,dest=$work/base-oci.tar" "$work/base" >/dev/null
rm -rf "$work/cairn-base"
base_id=$("${B[@]}" pull -q "oci-archive:$work/base-oci.tar")
"${B[@]}" tag "$base_id" docker.io/library/busybox:latest

ctx="$work/ctx"
cp -r bench/scenarios "$ctx"
for d in 1 2 3 4 5; do
    mkdir -p "$ctx/a/src/d$d"
    for f in $(seq 1 10); do
        printf 'file %d/%d\n%0200d\n' "$d" "$f" "$((d * 100 + f))" >"$ctx/a/src/d$d/f$f.txt"
    done
done
mkdir -p "$ctx/a/conf" "$ctx/c/files"
for f in 1 2 3 4 5; do echo "setting$f = $f" >"$ctx/a/conf/c$f.conf"; done
echo hello >"$ctx/c/files/hello.txt"

# ---------------------------------------------------------------- the two tools
# reset_TOOL leaves only the base image; TOOL_build … -t TAG CONTEXT stores one tagged image.
reset_cairn() {
    rm -rf "$work/cairn"
    CAIRN_ROOT="$work/cairn" "$cairn" load -i "$work/base-oci.tar" >/dev/null
}
reset_buildah() {
    "${B[@]}" rm --all >/dev/null
    local ids=() id
    for id in $("${B[@]}" images --all --quiet --no-trunc); do
        [ "${id#sha256:}" = "${base_id#sha256:}" ] || ids+=("$id")
    done
    if [ ${#ids[@]} -gt 0 ]; then "${B[@]}" rmi --force "${ids[@]}" >/dev/null; fi
}
cairn_build=(env "CAIRN_ROOT=$work/cairn" "$cairn" build --progress quiet)
buildah_build=("${B[@]}" bud --isolation chroot --layers --pull-never -q)
cairn_jobs=(-j 4)
buildah_jobs=(--jobs 4)

# measure TOOL NAME CONTEXT [FLAGS…]: one build under GNU time; appends the wall seconds to
# res/TOOL.NAME and the peak RSS (KiB: the largest of the process and of everything it
# waited for) to res/TOOL.NAME.rss.
measure() {
    local tool=$1 name=$2 context=$3 t0 t1
    local -n cmd="${tool}_build"
    shift 3
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f %M -o "$work/rss" "${cmd[@]}" "$@" -t "bench-${name%%-*}:latest" "$context" \
        >"$work/log" 2>&1; then
        cat "$work/log" >&2
        echo "bench/compare.sh: the $name build with $tool failed" >&2
        exit 1
    fi
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$work/res/$tool.$name"
    cat "$work/rss" >>"$work/res/$tool.$name.rss"
}

run_tool() {
    local t=$1
    local -n jobs="${t}_jobs"
    # a: cold, fully cached, one file of the last COPY changed.
    echo "setting3 = 3" >"$ctx/a/conf/c3.conf"
    reset_$t
    measure "$t" a-cold "$ctx/a"
    measure "$t" a-cached "$ctx/a"
    echo "setting3 = changed $rep" >"$ctx/a/conf/c3.conf"
    measure "$t" a-one-file "$ctx/a"
    # b: four parallel stages, cold and cached.
    reset_$t
    measure "$t" b-cold "$ctx/b" "${jobs[@]}"
    measure "$t" b-cached "$ctx/b" "${jobs[@]}"
    # c: a 200 MiB layer, cold.
    reset_$t
    measure "$t" c-cold "$ctx/c"
}

for rep in $(seq 1 "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order=(cairn buildah); else order=(buildah cairn); fi
    for t in "${order[@]}"; do
        echo "== repetition $rep/$REPS: $t" >&2
        run_tool "$t"
    done
done

# ---------------------------------------------------------------- report
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
targets=(a-cold 0.5 a-cached 0.05 a-one-file 0.15 b-cold 0.3 b-cached - c-cold 0.5)
table="| scenario | cairn (s) | Buildah (s) | cairn/Buildah | target | |
|---|---:|---:|---:|---:|---|"
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    s=${targets[i]} goal=${targets[i + 1]}
    c=$(median "$work/res/cairn.$s") b=$(median "$work/res/buildah.$s")
    row=$(awk -v s="$s" -v c="$c" -v b="$b" -v g="$goal" 'BEGIN {
        r = c / b
        if (g == "-") { tg = "–"; ok = "" } else { tg = "≤ " g; ok = (r <= g) ? "met" : "missed" }
        printf "| %s | %.3f | %.3f | %.3f | %s | %s |", s, c, b, r, tg, ok }')
    table+=$'\n'"$row"
done
rss_c=$(median "$work/res/cairn.c-cold.rss") rss_b=$(median "$work/res/buildah.c-cold.rss")
rss_line=$(awk -v c="$rss_c" -v b="$rss_b" 'BEGIN {
    printf "Peak RSS in c-cold (median): cairn %.1f MB (target ≤ 64 MB: %s), Buildah %.1f MB.", c / 1024, (c / 1024 <= 64) ? "met" : "missed", b / 1024 }')

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
if [ -n "${CAIRN_BIN:-}" ]; then rev="\`$CAIRN_BIN\`" dirty=""; fi
section="## $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r)

\`REPS=$REPS bench/compare.sh\`: cairn $rev$dirty (release build), $(buildah --version | cut -d' ' -f1-3);
kernel $(uname -r), $(nproc) CPUs ($cpu), $mem memory; load average $load_start at the start, $load_end at the end.${BENCH_NOTE:+
$BENCH_NOTE}

$table

$rss_line
"
echo
echo "$section"
if [ ! -f "$out" ]; then
    cat >"$out" <<'EOF'
# Benchmarks

Measured runs, newest last. Each section below is appended by `bench/compare.sh` (cairn
against Buildah, same run, same machine); the criterion benches of the runtime's hot paths
are `cargo bench -p cairn-runtime`.

**What a build is.** Both tools start from the same busybox base image (built by cairn
from Debian's busybox-static and pulled into Buildah's private store from an OCI archive)
and end with a tagged image in their own store: `cairn build --progress quiet -t NAME` and
`buildah bud --isolation chroot --layers --pull-never -q -t NAME` on the overlay storage
driver. Scenario b gives both the same parallelism: `-j 4` to cairn, `--jobs 4` to Buildah.
Cold means only the base image is in the store (cairn: a fresh `CAIRN_ROOT` with the base
loaded; Buildah: every image but the base removed). Times are wall-clock medians over the
repetitions; the tools alternate which goes first. Peak RSS is GNU time's maximum resident
set size: the largest of the process itself and every process it waited for (for cairn:
the CLI, its sandbox helpers and what ran inside them).

Scenarios (Dockerfiles in `bench/scenarios/`):
- **a**: 7 steps on one stage (RUN, COPY of a 50-file directory, ENV, WORKDIR, COPY,
  CMD): cold build, fully cached rebuild, rebuild after one file of the last COPY changed;
- **b**: four independent stages `RUN sleep 1 && echo N > /out` and a final stage copying
  the four outputs: cold, cached;
- **c**: `RUN dd if=/dev/urandom of=/big bs=1M count=200`, `RUN rm /big`, a COPY: cold.

EOF
fi
printf '%s\n' "$section" >>"$out"
echo "Appended to $out" >&2
