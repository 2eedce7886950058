#!/usr/bin/env bash
# cairn against BuildKit and Buildah on the same Dockerfiles (bench/scenarios/a…g) and the
# same images: run by hand as root, not in CI. Three builders:
# - cairn: `cairn build --progress quiet` on a private store (CAIRN_ROOT);
# - BuildKit: Debian's dockerd 20.10 (BuildKit inside), started by this script with its
#   own data root, exec root and socket (no iptables, no bridge) and stopped on exit;
#   `DOCKER_BUILDKIT=1 /usr/bin/docker build --network host -q`;
# - Buildah: `buildah bud --isolation chroot --layers --pull-never -q` on overlay storage
#   under a private root.
# All start from the same busybox base (built by cairn from Debian's busybox-static, given to
# dockerd with `docker load` and to Buildah from an OCI archive; no network), already
# unpacked for every builder before any timing (for cairn a throwaway `FROM busybox` +
# `RUN true` build after each reset). The builders alternate (each repetition rotates which
# goes first); medians, ratios to BuildKit and Buildah, peak RSS and, for d, the bytes read
# are printed and appended to BENCHMARKS.md as one table.
#
#   sudo bench/compare.sh                         # REPS=3, every scenario
#   REPS=5 BENCH_NOTE="quiet machine" bench/compare.sh
#   REPS=1 BENCH_D_FILES=2000 BENCH_OUT=/tmp/try.md bench/compare.sh   # a dry run
#   BENCH_SCENARIOS="a b c f" bench/compare.sh    # a subset (rows of the others show –)
#   CAIRN_BIN=/path/to/cairn bench/compare.sh     # another build (before/after a change)
#   BENCH_SKIP="buildah:e" bench/compare.sh       # not Buildah on e (its row shows –)
#   BENCH_RES=/tmp/res bench/compare.sh           # keep every measurement (one file a row)
#
# Needs root; installs buildah, docker.io, skopeo, docker-registry, mmdebstrap, time and
# busybox-static when missing. Scenario f's Debian root filesystem is made once with
# mmdebstrap (needs the Debian mirror, as f's apt-get step does) and kept in
# BENCH_CACHE (/var/tmp/cairn-bench-cache). Everything else lives in one temp directory;
# dockerd and the registry are stopped, and everything below it unmounted and removed, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
out=${BENCH_OUT:-BENCHMARKS.md}
scenarios=" ${BENCH_SCENARIOS:-a b c d e f g} "
d_files=${BENCH_D_FILES:-100000}
cache=${BENCH_CACHE:-/var/tmp/cairn-bench-cache}
if [ "$(id -u)" != 0 ]; then
    echo "bench/compare.sh: needs root (dockerd, sandboxes and overlay mounts)" >&2
    exit 1
fi
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v skopeo >/dev/null || need+=(skopeo)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
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
has() { [[ $scenarios == *" $1 "* ]]; }
# runs TOOL X: scenario X is run, and not skipped for TOOL (BENCH_SKIP="buildah:e …").
runs() { has "$2" && [[ " ${BENCH_SKIP:-} " != *" $1:$2 "* ]]; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/cairn-bench.XXXXXX")
B=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver overlay)
CS="containers-storage:[overlay@$work/buildah/root+$work/buildah/run]"
sock="$work/docker.sock"
DK=(/usr/bin/docker -H "unix://$sock")
dockerd_pid= reg_pid=
cleanup() {
    set +e
    if [ -n "${BENCH_RES:-}" ]; then cp -r "$work/res" "$BENCH_RES"; fi
    "${B[@]}" rm --all >/dev/null 2>&1
    "${B[@]}" rmi --all --force >/dev/null 2>&1
    if [ -n "$dockerd_pid" ]; then kill "$dockerd_pid" && wait "$dockerd_pid"; fi
    if [ -n "$reg_pid" ]; then kill "$reg_pid" && wait "$reg_pid"; fi
    # Whatever is still mounted below $work (a build interrupted halfway, dockerd's
    # overlays and netns files), deepest first.
    awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m"
    done
    rm -rf "$work"
} 2>/dev/null
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- dockerd and the registry
mkdir -p "$work/docker" "$work/res"
/usr/sbin/dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$sock" \
    --pidfile "$work/docker/pid" --iptables=false --bridge=none >"$work/docker/log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 150); do "${DK[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
"${DK[@]}" version >/dev/null || { cat "$work/docker/log" >&2; exit 1; }
. bench/registry.sh
start_registry "$work/registry"
reg=$reg_host

# ---------------------------------------------------------------- base image and contexts
mkdir -p "$work/base" "$work/warm"
cp examples/base/Dockerfile "$work/base/"
cp /bin/busybox "$work/base/busybox"
CAIRN_ROOT="$work/cairn-base" "$cairn" build --progress quiet -t busybox:latest \
    -o "type=oci,dest=$work/base-oci.tar" "$work/base" >/dev/null
CAIRN_ROOT="$work/cairn-base" "$cairn" save -o "$work/base-docker.tar" busybox:latest
rm -rf "$work/cairn-base"
base_id=$("${B[@]}" pull -q "oci-archive:$work/base-oci.tar")
"${B[@]}" tag "$base_id" docker.io/library/busybox:latest
"${DK[@]}" load -q -i "$work/base-docker.tar" >/dev/null
dk_base=$("${DK[@]}" image inspect -f '{{.Id}}' busybox:latest)
printf 'FROM busybox\nRUN true\n' >"$work/warm/Dockerfile"

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
if has d; then
    # d: BENCH_D_FILES files of 2 GiB / 100,000 bytes each (21 KiB): 1% of them in app/
    # (random bytes, what the COPY packs), the rest in data/NNN/ (1,000 a directory).
    echo "== making scenario d's context: $d_files files" >&2
    python3 - "$ctx/d" "$d_files" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
size = 2 * 1024**3 // 100000
block = os.urandom(size)
app = max(1, n // 100)
for i in range(n):
    if i < app:
        d, data = "app", os.urandom(size)
    else:
        d, data = "data/%03d" % ((i - app) // 1000), b"%08d" % i + block[8:]
    if i == 0 or i == app or (i - app) % 1000 == 0:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, d, "f%06d" % i), "wb") as f:
        f.write(data)
EOF
fi
if has g; then
    # g: 5,000 lines: 50 stages of ARG, ENV, LABEL, WORKDIR and one RUN of 60 continued
    # lines, a final stage that copies from each, LABEL lines up to 5,000.
    mkdir -p "$ctx/g"
    {
        echo "# Scenario g: 5,000 lines, made by bench/compare.sh."
        for s in $(seq 1 50); do
            echo "FROM busybox AS s$s"
            echo "ARG V$s=value$s"
            for i in $(seq 1 20); do echo "ENV S${s}_K$i=\"v$i \${V$s}\""; done
            for i in $(seq 1 14); do echo "LABEL org.example.s$s.l$i=\"label $i of stage $s\""; done
            echo "WORKDIR /w$s"
            echo "RUN set -e \\"
            for i in $(seq 1 59); do echo "    && echo \"\$S${s}_K$((i % 20 + 1)) $i\" >> /w$s/out \\"; done
            echo "    && wc -l /w$s/out"
        done
        echo "FROM busybox"
        for s in $(seq 1 50); do echo "COPY --from=s$s /w$s/out /out$s"; done
    } >"$ctx/g/Dockerfile"
    n=$(wc -l <"$ctx/g/Dockerfile")
    for i in $(seq $((n + 1)) 5000); do echo "LABEL org.example.pad$i=\"$i\""; done >>"$ctx/g/Dockerfile"
fi

# f: the Debian base as a docker-archive (mmdebstrap's tar, `docker import`ed and `docker
# save`d once; kept in $cache), and the same image in the registry (skopeo, gzip layers).
deb="$cache/debian-bookworm-minbase.docker.tar"
if has f; then
    mkdir -p "$cache"
    if [ ! -s "$deb" ]; then
        rootfs="$cache/debian-bookworm-minbase.tar"
        if [ ! -s "$rootfs" ]; then
            echo "== mmdebstrap --variant=minbase bookworm (once; kept in $cache)" >&2
            mmdebstrap --variant=minbase -q bookworm "$rootfs.part.tar" http://deb.debian.org/debian
            mv "$rootfs.part.tar" "$rootfs"
        fi
        "${DK[@]}" import "$rootfs" debian-bench:bookworm >/dev/null
        "${DK[@]}" save -o "$deb.part" debian-bench:bookworm
        mv "$deb.part" "$deb"
        "${DK[@]}" rmi debian-bench:bookworm >/dev/null
    fi
    skopeo copy -q --dest-tls-verify=false "docker-archive:$deb" "docker://$reg/bench/debian:bookworm"
fi

# ---------------------------------------------------------------- the three builders
# reset_TOOL leaves only the (unpacked) base image; empty_TOOL leaves nothing, for f.
reset_cairn() {
    rm -rf "$work/cairn"
    CAIRN_ROOT="$work/cairn" "$cairn" load -i "$work/base-oci.tar" >/dev/null
    CAIRN_ROOT="$work/cairn" "$cairn" build --progress quiet "$work/warm" >/dev/null 2>&1
}
empty_cairn() { rm -rf "$work/cairn"; }
reset_buildkit() {
    local id
    for id in $("${DK[@]}" images --all --quiet --no-trunc | sort -u); do
        [ "$id" = "$dk_base" ] || "${DK[@]}" rmi --force "$id" >/dev/null 2>&1 || true
    done
    "${DK[@]}" builder prune --all --force >/dev/null
}
empty_buildkit() {
    reset_buildkit
    "${DK[@]}" rmi --force debian-bench:bookworm "$reg/bench/debian:bookworm" >/dev/null 2>&1 || true
}
reset_buildah() {
    "${B[@]}" rm --all >/dev/null
    local ids=() id
    for id in $("${B[@]}" images --all --quiet --no-trunc); do
        [ "${id#sha256:}" = "${base_id#sha256:}" ] || ids+=("$id")
    done
    if [ ${#ids[@]} -gt 0 ]; then "${B[@]}" rmi --force "${ids[@]}" >/dev/null; fi
}
empty_buildah() { reset_buildah; }
cairn_build=(env "CAIRN_ROOT=$work/cairn" "$cairn" build --progress quiet)
buildkit_build=(env DOCKER_BUILDKIT=1 "${DK[@]}" build --network host -q)
buildah_build=("${B[@]}" bud --isolation chroot --layers --pull-never -q)
cairn_jobs=(-j 4)
buildkit_jobs=()
buildah_jobs=(--jobs 4)
cairn_insecure=(--insecure-registry "$reg")
buildkit_insecure=()
buildah_insecure=()
# f's RUN fetches from the Debian mirror: every builder on the host's network (BuildKit
# has no other here, with --bridge=none; Buildah's chroot isolation uses the host's).
cairn_net=(--network host --allow network.host)
buildkit_net=()
buildah_net=()

# measure TOOL NAME COMMAND…: runs COMMAND under GNU time; appends to res/TOOL.NAME the wall
# seconds, to .rss the peak RSS in KiB, to .read the bytes read (rchar).
# - cairn, Buildah: RSS is GNU time's (the largest of the process and all it waited for);
#   rchar is what this shell's reaped children read (the kernel adds a reaped child's I/O
#   counters to its parent's), the difference around the command.
# - BuildKit: the work is in dockerd: RSS is dockerd's peak during the command (its high
#   water mark is reset before, `clear_refs` 5), which includes the daemon's resident memory
#   from before the build; rchar is dockerd's difference plus the docker CLI's (the CLI reads
#   the context and sends it, so a context's bytes count twice).
rchar() { awk '/^rchar/ { print $2 }' "/proc/$1/io"; }
measure() {
    local tool=$1 name=$2 t0 t1 r0 r1 d0=0 d1=0 tries=0
    shift 2
    r0=$(rchar $$)
    if [ "$tool" = buildkit ]; then
        d0=$(rchar "$dockerd_pid")
        echo 5 >"/proc/$dockerd_pid/clear_refs"
    fi
    t0=$EPOCHREALTIME
    while ! /usr/bin/time -f %M -o "$work/rss" "$@" >"$work/log" 2>&1; do
        # BuildKit 0.8's known failure under load when many vertices wait on one
        # (e's 50 stages on one FROM): a cold build is redone from a reset, at most twice.
        # After three failures in a row the measurement is given up (its rows show –, the
        # table says so) instead of the whole run.
        if [ "$tool" = buildkit ] && [ "${name%-cold}" != "$name" ] && grep -q 'flightcontrol: exceeded retry timeout' "$work/log"; then
            if [ $((tries += 1)) -gt 2 ]; then
                echo "$name (repetition $rep)" >>"$work/res/gaveup"
                echo "== $name with buildkit: failed three times; given up" >&2
                return 1
            fi
            echo "$name (repetition $rep): flightcontrol: exceeded retry timeout" >>"$work/res/retries"
            echo "== $name with buildkit: flightcontrol: exceeded retry timeout; reset and again" >&2
            reset_buildkit
            echo 5 >"/proc/$dockerd_pid/clear_refs"
            t0=$EPOCHREALTIME
            continue
        fi
        cat "$work/log" >&2
        echo "bench/compare.sh: $name with $tool failed: $*" >&2
        exit 1
    done
    t1=$EPOCHREALTIME
    r1=$(rchar $$)
    if [ "$tool" = buildkit ]; then
        d1=$(rchar "$dockerd_pid")
        awk '/^VmHWM/ { print $2 }' "/proc/$dockerd_pid/status" >>"$work/res/$tool.$name.rss"
    else
        cat "$work/rss" >>"$work/res/$tool.$name.rss"
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$work/res/$tool.$name"
    echo $((r1 - r0 + d1 - d0)) >>"$work/res/$tool.$name.read"
}
# build TOOL NAME CONTEXT [FLAGS…]: one build storing the image bench-X:latest.
build() {
    local tool=$1 name=$2 context=$3
    local -n cmd="${tool}_build"
    shift 3
    measure "$tool" "$name" "${cmd[@]}" "$@" -t "bench-${name%%-*}:latest" "$context"
}
# sum TOOL NAME A B: the row NAME is A + B of the same repetition (the last lines).
sum() {
    paste <(tail -n 1 "$work/res/$1.$3") <(tail -n 1 "$work/res/$1.$4") | awk '{ printf "%.4f\n", $1 + $2 }' \
        >>"$work/res/$1.$2"
}

# f's import, export and pull commands for each builder.
import_cairn() { measure cairn f-import env "CAIRN_ROOT=$work/cairn" "$cairn" load -i "$deb"; }
import_buildkit() { measure buildkit f-import "${DK[@]}" load -q -i "$deb"; }
import_buildah() { measure buildah f-import skopeo copy -q "docker-archive:$deb" "${CS}docker.io/library/debian-bench:bookworm"; }
pull_cairn() { measure cairn f-pull env "CAIRN_ROOT=$work/cairn" "$cairn" pull --insecure-registry "$reg" "$reg/bench/debian:bookworm"; }
pull_buildkit() { measure buildkit f-pull "${DK[@]}" pull -q "$reg/bench/debian:bookworm"; }
pull_buildah() { measure buildah f-pull "${B[@]}" pull -q --tls-verify=false "docker://$reg/bench/debian:bookworm"; }
save_cairn() {
    measure cairn f-save-docker env "CAIRN_ROOT=$work/cairn" "$cairn" save -o "$work/f-docker.tar" bench-f:latest
    measure cairn f-save-oci env "CAIRN_ROOT=$work/cairn" "$cairn" build --progress quiet "${cairn_net[@]}" \
        -o "type=oci,dest=$work/f-oci.tar" "$ctx/f"
}
save_buildkit() {
    # The docker driver has no OCI exporter (`-o type=oci` needs buildx's container driver).
    measure buildkit f-save-docker "${DK[@]}" save -o "$work/f-docker.tar" bench-f:latest
}
save_buildah() {
    measure buildah f-save-docker skopeo copy -q "${CS}localhost/bench-f:latest" "docker-archive:$work/f-docker.tar:bench-f:latest"
    measure buildah f-save-oci skopeo copy -q "${CS}localhost/bench-f:latest" "oci-archive:$work/f-oci.tar:bench-f:latest"
}
# Sizes of the archives written, for MB/s.
sizes() {
    local f
    for f in docker oci; do
        [ -f "$work/f-$f.tar" ] && stat -c %s "$work/f-$f.tar" >>"$work/res/$1.f-save-$f.bytes"
        rm -f "$work/f-$f.tar"
    done
    return 0
}

run_tool() {
    local t=$1
    local -n jobs="${t}_jobs" insecure="${t}_insecure" net="${t}_net"
    if runs "$t" a; then
        # a: cold, fully cached, one file of the last COPY changed.
        echo "setting3 = 3" >"$ctx/a/conf/c3.conf"
        reset_$t
        build "$t" a-cold "$ctx/a"
        build "$t" a-cached "$ctx/a"
        echo "setting3 = changed $rep" >"$ctx/a/conf/c3.conf"
        build "$t" a-one-file "$ctx/a"
    fi
    if runs "$t" b; then
        # b: four parallel stages, cold and cached.
        reset_$t
        build "$t" b-cold "$ctx/b" "${jobs[@]}"
        build "$t" b-cached "$ctx/b" "${jobs[@]}"
    fi
    if runs "$t" c; then
        # c: a 200 MiB layer, cold.
        reset_$t
        build "$t" c-cold "$ctx/c"
    fi
    if runs "$t" d; then
        # d: COPY of 1% of a big context: cold, cached, one file of app/ changed.
        printf 'original\n' >"$ctx/d/app/f000000"
        reset_$t
        build "$t" d-cold "$ctx/d"
        build "$t" d-cached "$ctx/d"
        printf 'changed %s %s\n' "$t" "$rep" >"$ctx/d/app/f000000"
        build "$t" d-one-file "$ctx/d"
    fi
    if runs "$t" e; then
        # e: 50 stages into one, cold and cached.
        reset_$t
        # BuildKit 0.8 may give up on e-cold (see measure): then it has no e-cached either.
        { build "$t" e-cold "$ctx/e" "${jobs[@]}" && build "$t" e-cached "$ctx/e" "${jobs[@]}"; } || true
    fi
    if runs "$t" g && [ "$t" != buildah ]; then
        # g: a 5,000-line Dockerfile, fully cached (the cold build before is not timed).
        # Not Buildah: with --layers it commits an image for each of g's 1,850
        # instructions, and its cold build had not ended after 6 minutes.
        reset_$t
        local -n gcmd="${t}_build"
        "${gcmd[@]}" "${jobs[@]}" -t bench-g:latest "$ctx/g" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
        build "$t" g-cached "$ctx/g" "${jobs[@]}"
        if [ "$t" = cairn ]; then
            measure cairn g-compile "$cairn" compile "$ctx/g"
        fi
    fi
    if runs "$t" f; then
        # f: import the Debian base, build on it at once, export; then pull it and build.
        empty_$t
        "import_$t"
        build "$t" f-build "$ctx/f" "${net[@]}"
        sum "$t" f-import+build f-import f-build
        "save_$t"
        sizes "$t"
        empty_$t
        "pull_$t"
        build "$t" f-pull-build "$ctx/f" --build-arg "BASE=$reg/bench/debian:bookworm" "${insecure[@]}" "${net[@]}"
        sum "$t" f-pull+build f-pull f-pull-build
    fi
}

tools=(cairn buildkit buildah)
for rep in $(seq 1 "$REPS"); do
    k=$(((rep - 1) % 3))
    order=("${tools[@]:k}" "${tools[@]:0:k}")
    for t in "${order[@]}"; do
        echo "== repetition $rep/$REPS: $t" >&2
        run_tool "$t"
    done
done

# The Debian base layer compressed by each builder's push (gzip), once.
layer_line=
if has f; then
    empty_cairn
    CAIRN_ROOT="$work/cairn" "$cairn" load -i "$deb" >/dev/null
    CAIRN_ROOT="$work/cairn" "$cairn" push --insecure-registry "$reg" debian-bench:bookworm "$reg/size/cairn:1" >/dev/null 2>&1
    "${DK[@]}" load -q -i "$deb" >/dev/null
    "${DK[@]}" tag debian-bench:bookworm "$reg/size/docker:1"
    "${DK[@]}" push -q "$reg/size/docker:1" >/dev/null
    skopeo copy -q "docker-archive:$deb" "${CS}docker.io/library/debian-bench:bookworm"
    "${B[@]}" push -q --tls-verify=false docker.io/library/debian-bench:bookworm "docker://$reg/size/buildah:1" >/dev/null
    lsize() { skopeo inspect --raw --tls-verify=false "docker://$reg/size/$1:1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["size"])'; }
    lc=$(lsize cairn) ld=$(lsize docker) lb=$(lsize buildah)
    layer_line=$(awk -v c="$lc" -v d="$ld" -v b="$lb" -v u="$(tar -xOf "$deb" --wildcards '*/layer.tar' | wc -c)" 'BEGIN {
        printf "Debian base layer (%.1f MB of tar) gzipped by each push: cairn %.1f MB, dockerd %.1f MB, Buildah %.1f MB: cairn/dockerd %.3f (target ≤ 1.03: %s).",
            u / 1e6, c / 1e6, d / 1e6, b / 1e6, c / d, (c / d <= 1.03) ? "met" : "missed" }')
fi

# ---------------------------------------------------------------- report
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { if [ -s "$work/res/$1" ]; then median "$work/res/$1"; else echo -; fi; }
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
retries=$(paste -sd';' "$work/res/retries" 2>/dev/null || true)
gaveup=$(paste -sd';' "$work/res/gaveup" 2>/dev/null || true)
# Rows: scenario and target. rX: cairn/BuildKit ≤ X; sX: cairn ≤ X seconds.
rows=(a-cold - a-cached r0.1 a-one-file r0.1 b-cold s1.05 b-cached r0.1 c-cold r0.5
    d-cold - d-cached r0.1 d-one-file r0.1 e-cold - e-cached r0.1
    f-import r0.8 f-build - f-import+build r0.8 f-pull - f-pull-build - f-pull+build r0.8
    f-save-docker - f-save-oci - g-compile - g-cached r0.1)
table="| scenario | cairn (s) | BuildKit (s) | Buildah (s) | cairn/BuildKit | cairn/Buildah | target | | peak RSS MB: cairn / BuildKit's dockerd / Buildah | MB read: cairn / BuildKit / Buildah | MB/s: cairn / docker / skopeo |
|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"
for ((i = 0; i < ${#rows[@]}; i += 2)); do
    s=${rows[i]} goal=${rows[i + 1]}
    has "${s%%-*}" || continue
    c=$(med "cairn.$s") k=$(med "buildkit.$s") h=$(med "buildah.$s")
    rss="$(med "cairn.$s.rss") $(med "buildkit.$s.rss") $(med "buildah.$s.rss")"
    read="-" mbs="-"
    if [ "${s%%-*}" = d ]; then read="$(med "cairn.$s.read") $(med "buildkit.$s.read") $(med "buildah.$s.read")"; fi
    case $s in
    f-import) mbs="$(stat -c %s "$deb") $c $k $h" ;;
    f-pull) mbs="$(stat -c %s "$deb") - $k $h" ;; # cairn's pull is lazy: no layer moves
    f-save-docker | f-save-oci) mbs="$(med "cairn.$s.bytes") $c $(med "buildkit.$s.bytes") $k $(med "buildah.$s.bytes") $h" ;;
    esac
    row=$(awk -v s="$s" -v c="$c" -v k="$k" -v h="$h" -v g="$goal" -v rss="$rss" -v rd="$read" -v mbs="$mbs" '
        function num(x, f) { return (x == "-") ? "–" : sprintf(f, x) }
        function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "–" : sprintf("%.3f", a / b) }
        function mb(x) { return (x == "-") ? "–" : sprintf("%.1f", x / 1024) }
        function mbr(x) { return (x == "-") ? "–" : sprintf("%.1f", x / 1e6) }
        function rate(b, t) { return (b == "-" || t == "-" || t == 0) ? "–" : sprintf("%.0f", b / 1e6 / t) }
        BEGIN {
            tg = "–"; ok = ""
            if (g ~ /^r/) { tg = "≤ " substr(g, 2) "× BuildKit"; if (c != "-" && k != "-") ok = (c / k <= substr(g, 2) + 0) ? "met" : "missed" }
            if (g ~ /^s/) { tg = "≤ " substr(g, 2) " s"; if (c != "-") ok = (c <= substr(g, 2) + 0) ? "met" : "missed" }
            split(rss, r, " "); split(rd, d, " "); n = split(mbs, m, " ")
            rs = mb(r[1]) " / " mb(r[2]) " / " mb(r[3])
            rdd = (rd == "-") ? "" : mbr(d[1]) " / " mbr(d[2]) " / " mbr(d[3])
            if (n == 4) ms = rate(m[1], m[2]) " / " rate(m[1], m[3]) " / " rate(m[1], m[4])
            else if (n == 6) ms = rate(m[1], m[2]) " / " rate(m[3], m[4]) " / " rate(m[5], m[6])
            else ms = ""
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", s, num(c, "%.3f"), num(k, "%.3f"), num(h, "%.3f"),
                ratio(c, k), ratio(c, h), tg, ok, rs, rdd, ms }')
    table+=$'\n'"$row"
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
if [ -n "${CAIRN_BIN:-}" ]; then rev="\`$CAIRN_BIN\`" dirty=""; fi
section="## $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), cairn against BuildKit and Buildah

\`REPS=$REPS${BENCH_SKIP:+ BENCH_SKIP=\"$BENCH_SKIP\"}${BENCH_SCENARIOS:+ BENCH_SCENARIOS=\"$BENCH_SCENARIOS\"}${BENCH_D_FILES:+ BENCH_D_FILES=$BENCH_D_FILES} bench/compare.sh\`: cairn $rev$dirty (release build), $("${DK[@]}" version -f 'dockerd {{.Server.Version}}'), $(buildah --version | cut -d' ' -f1-3), $(skopeo --version);
kernel $(uname -r), $(nproc) CPUs ($cpu), $mem memory; load average $load_start at the start, $load_end at the end.${BENCH_NOTE:+
$BENCH_NOTE}

$table
${retries:+
BuildKit failed with \`flightcontrol: exceeded retry timeout\` and was reset and timed again: $retries.}${gaveup:+
BuildKit failed three times in a row, and the run went on without it, at: $gaveup (its rows for the scenario show –).}${layer_line:+
$layer_line}
"
echo
echo "$section"
printf '%s\n' "$section" >>"$out"
echo "Appended to $out" >&2
