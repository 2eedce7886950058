#!/usr/bin/env bash
# The README demo: builds the busybox base from Debian's busybox-static with cairn, then a
# multi-stage image (twice: the second build is fully cached), exports it as an OCI
# layout and inspects it with skopeo. Offline; needs root (the sandbox) and
# busybox-static + skopeo (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v skopeo >/dev/null || need+=(skopeo)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== 0. building cairn in release mode (a few minutes the first time)"
cargo build --release --locked
cairn=target/release/cairn
export CAIRN_ROOT="${CAIRN_ROOT:-$PWD/target/demo-store}"
out=target/demo-out
mkdir -p "$out"

cp /bin/busybox examples/base/busybox
trap 'rm -f examples/base/busybox' EXIT
echo "== 1. the busybox base image, from Debian's busybox-static"
$cairn build --progress plain -t busybox:latest examples/base

echo "== 2. the multi-stage demo (the two 1-second stages run at the same time)"
$cairn build --progress plain -t demo:latest -o "type=oci,dest=$out/demo-oci,tar=false" examples/demo

echo "== 3. again: every step is CACHED"
$cairn build --progress plain -t demo:latest -o "type=oci,dest=$out/demo-oci,tar=false" examples/demo

echo "== 4. skopeo inspect oci:$out/demo-oci:latest"
skopeo inspect "oci:$out/demo-oci:latest"
$cairn images
echo "== the images above are in the demo's own store: CAIRN_ROOT=$CAIRN_ROOT $cairn images"
