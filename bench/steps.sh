#!/usr/bin/env bash
# Per-step cost of a RUN step's sandbox: 20 `RUN true` steps built with --no-cache, with the
# default network (a namespace of its own through slirp4netns), with `--network none` (a
# namespace, no slirp4netns) and with `RUN --network=host` (`--allow network.host`); medians
# of hyperfine runs. Run by hand, as root; not in CI.
#
#   CAIRN_BIN=target/release/cairn bench/steps.sh
#   CAIRN_BIN=… OTHER_BIN=/path/to/an/older/cairn RUNS=5 bench/steps.sh   # the older one
#       on the same Dockerfile (its default network, whatever that was)
#
# Installs hyperfine, slirp4netns and busybox-static when missing. Everything lives in one
# temp directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
cairn=$(realpath "${CAIRN_BIN:-target/release/cairn}")
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v slirp4netns >/dev/null || need+=(slirp4netns)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/cairn-steps.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/base" "$work/def" "$work/host"
cp examples/base/Dockerfile "$work/base/"
cp /bin/busybox "$work/base/busybox"
CAIRN_ROOT="$work/s0" "$cairn" build --progress quiet -t busybox:latest -o "type=oci,dest=$work/base.tar" \
    "$work/base" >/dev/null
{ echo "FROM busybox"; for i in $(seq 1 20); do echo "RUN true # $i"; done; } >"$work/def/Dockerfile"
{ echo "FROM busybox"; for i in $(seq 1 20); do echo "RUN --network=host true # $i"; done; } >"$work/host/Dockerfile"
CAIRN_ROOT="$work/s1" "$cairn" load -i "$work/base.tar" >/dev/null
run=(env "CAIRN_ROOT=$work/s1" "$cairn" build --no-cache --progress quiet)
cmds=(-n default "${run[*]} $work/def"
    -n none "${run[*]} --network none $work/def"
    -n host "${run[*]} --allow network.host $work/host")
if [ -n "${OTHER_BIN:-}" ]; then
    other=$(realpath "$OTHER_BIN")
    CAIRN_ROOT="$work/s2" "$other" load -i "$work/base.tar" >/dev/null
    cmds+=(-n other "env CAIRN_ROOT=$work/s2 $other build --no-cache --progress quiet $work/def")
fi
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N -r "$RUNS" -w 1 --export-json "$work/steps.json" "${cmds[@]}" >/dev/null
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/steps.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command']:8} median {r['median']:.3f} s ({1000 * r['median'] / 20:.1f} ms a step), "
          f"user+sys {r['user'] + r['system']:.3f} s")
EOF
