#!/bin/sh
# A CI step written the way docker/build-push-action calls `docker buildx build`, with
# `cairn build` in its place ($BUILDX). The flags and their order are the action's:
# --iidfile, --label, --build-arg, --file, --metadata-file, --output, --progress,
# --tag, --target, then the context.
# Usage: build-push-action.sh WORKDIR CONTEXT
set -eu
work=$1
context=$2
BUILDX=${BUILDX:?set BUILDX to the build command, e.g. "cairn build"}

$BUILDX \
  --iidfile "$work/iidfile" \
  --label org.opencontainers.image.source=https://example.invalid/repo \
  --label org.opencontainers.image.revision=0123abc \
  --build-arg VERSION=1.2.3 \
  --file "$context/ci.Dockerfile" \
  --metadata-file "$work/metadata.json" \
  --output "type=oci,dest=$work/image.tar" \
  --progress plain \
  --tag example/app:1.2.3 \
  --tag example/app:latest \
  --target release \
  "$context"

# What the action reads back afterwards.
imageid=$(cat "$work/iidfile")
digest=$(sed -n 's/.*"containerimage.digest": *"\([^"]*\)".*/\1/p' "$work/metadata.json")
echo "imageid=$imageid" >> "$work/outputs"
echo "digest=$digest" >> "$work/outputs"
