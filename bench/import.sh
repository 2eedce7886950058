#!/usr/bin/env bash
# Import speed (issue 18): `cairn load` of a docker-archive against `docker load` of the
# same file, each into an empty store, medians of $RUNS (run by hand; numbers go to
# BENCHMARKS.md, never into tests). Needs a dockerd of your own:
#
#   /usr/sbin/dockerd --data-root D --exec-root E -H unix://S --iptables=false --bridge=none
#   DOCKER_HOST=unix://S bench/import.sh ARCHIVE [CAIRN_BIN...]
#
# WORKDIR puts the stores on the filesystem of dockerd's --data-root (default /var/tmp).
# A Debian base archive: `mmdebstrap --variant=minbase bookworm deb.tar`, then
# `docker import deb.tar debmm && docker save debmm -o ARCHIVE`.
set -euo pipefail
archive=${1:?usage: bench/import.sh ARCHIVE [CAIRN_BIN...]}
shift
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$(dirname "$0")/../target/release/cairn")
docker=(/usr/bin/docker -H "${DOCKER_HOST:?set DOCKER_HOST to your own dockerd}")
runs=${RUNS:-3}
work=$(mktemp -d "${WORKDIR:-/var/tmp}/cairn-import.XXXXXX")
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
name=$(tar -xOf "$archive" manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RepoTags"][0])')
declare -A times
for r in $(seq "$runs"); do
    "${docker[@]}" rmi -f "$name" >/dev/null 2>&1 || true
    sync
    times[docker]+="$(secs "${docker[@]}" load -i "$archive") "
    for i in "${!bins[@]}"; do
        rm -rf "$work/store"
        sync
        times[cairn$i]+="$(secs env CAIRN_ROOT="$work/store" "${bins[$i]}" load -i "$archive") "
    done
done
d=$(echo "${times[docker]}" | tr ' ' '\n' | grep . | median)
printf '| %s | %s | %.2f | 1.00 |\n' "docker load" "${times[docker]}" "$d"
for i in "${!bins[@]}"; do
    c=$(echo "${times[cairn$i]}" | tr ' ' '\n' | grep . | median)
    printf '| %s | %s | %.2f | %.2f |\n' "cairn load (${bins[$i]})" "${times[cairn$i]}" "$c" "$(echo "$c / $d" | bc -l)"
done
