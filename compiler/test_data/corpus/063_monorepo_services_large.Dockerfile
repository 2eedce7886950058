# syntax=docker/dockerfile:1
# One Dockerfile for a monorepo: a Go API, a Node web front end, a Python worker and a
# Rust edge proxy, plus shared test and lint stages. Build one service with --target.

ARG GO_VERSION=1.22
ARG NODE_VERSION=20
ARG PYTHON_VERSION=3.12
ARG RUST_VERSION=1.80
ARG ALPINE_VERSION=3.20
ARG DISTROLESS=gcr.io/distroless/static-debian12:nonroot
ARG GIT_SHA=unknown

# ----------------------------------------------------------------------------
# Shared: protobuf generation
# ----------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM bufbuild/buf:1.34.0 AS buf

FROM --platform=$BUILDPLATFORM alpine:${ALPINE_VERSION} AS proto
COPY --from=buf /usr/local/bin/buf /usr/local/bin/buf
WORKDIR /repo
COPY proto/ proto/
COPY buf.yaml buf.gen.yaml ./
RUN --mount=type=cache,target=/root/.cache/buf \
    buf lint && buf generate --output /gen

# ----------------------------------------------------------------------------
# Go API
# ----------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS api-deps
WORKDIR /repo/services/api
COPY services/api/go.mod services/api/go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

FROM api-deps AS api-build
ARG TARGETOS
ARG TARGETARCH
ARG GIT_SHA
COPY services/api/ ./
COPY --from=proto /gen/go/ ./internal/pb/
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
        -ldflags="-s -w -X main.commit=${GIT_SHA}" \
        -o /out/api ./cmd/api

FROM api-deps AS api-test
COPY services/api/ ./
COPY --from=proto /gen/go/ ./internal/pb/
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go test -count=1 ./... > /test-report.txt

FROM ${DISTROLESS} AS api
COPY --from=api-build /out/api /api
EXPOSE 8080 9090
USER nonroot:nonroot
ENTRYPOINT ["/api"]

# ----------------------------------------------------------------------------
# Node web front end
# ----------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-alpine AS web-deps
WORKDIR /repo
RUN corepack enable
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY services/web/package.json services/web/
COPY packages/ui/package.json packages/ui/
RUN --mount=type=cache,id=pnpm-store,target=/root/.local/share/pnpm/store \
    pnpm install --frozen-lockfile --filter web...

FROM web-deps AS web-build
ARG GIT_SHA
ENV NEXT_PUBLIC_COMMIT=${GIT_SHA} \
    NEXT_TELEMETRY_DISABLED=1
COPY packages/ui/ packages/ui/
COPY services/web/ services/web/
COPY --from=proto /gen/ts/ services/web/src/pb/
RUN pnpm --filter web build

FROM web-deps AS web-test
COPY packages/ui/ packages/ui/
COPY services/web/ services/web/
COPY --from=proto /gen/ts/ services/web/src/pb/
RUN pnpm --filter web test -- --ci

FROM node:${NODE_VERSION}-alpine AS web
ENV NODE_ENV=production PORT=3000
WORKDIR /app
RUN addgroup -S -g 1001 web && adduser -S -u 1001 -G web web
COPY --from=web-build --chown=web:web /repo/services/web/.next/standalone ./
COPY --from=web-build --chown=web:web /repo/services/web/.next/static ./services/web/.next/static
COPY --from=web-build --chown=web:web /repo/services/web/public ./services/web/public
USER web
EXPOSE 3000
CMD ["node", "services/web/server.js"]

# ----------------------------------------------------------------------------
# Python worker
# ----------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS worker-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /repo/services/worker
RUN python -m venv /venv
ENV PATH=/venv/bin:$PATH
COPY services/worker/requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements.lock
COPY services/worker/ ./
COPY --from=proto /gen/python/ ./worker/pb/
RUN pip install --no-deps . && python -m compileall -q /venv

FROM worker-build AS worker-test
RUN --mount=type=cache,target=/root/.cache/pip pip install pytest pytest-asyncio
RUN pytest -q tests

FROM python:${PYTHON_VERSION}-slim AS worker
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=worker-build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --system --uid 1002 worker
USER worker
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "worker", "--concurrency", "4"]

# ----------------------------------------------------------------------------
# Rust edge proxy
# ----------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS edge-build
ARG TARGETARCH
RUN dpkg --add-architecture arm64 \
    && apt-get update \
    && apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
WORKDIR /repo/services/edge
COPY services/edge/Cargo.toml services/edge/Cargo.lock ./
COPY services/edge/src ./src
COPY --from=proto /gen/rust/ ./src/pb/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/repo/services/edge/target,id=edge-target-${TARGETARCH} \
    <<EOF
set -eu
case "${TARGETARCH}" in
  amd64) triple=x86_64-unknown-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-gnu ;;
  *) echo "unsupported ${TARGETARCH}" >&2; exit 1 ;;
esac
cargo build --release --locked --target "$triple"
install -D "target/$triple/release/edge" /out/edge
EOF

FROM debian:bookworm-slim AS edge
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=edge-build /out/edge /usr/local/bin/edge
COPY services/edge/config/default.toml /etc/edge/config.toml
EXPOSE 443 80 8443/udp
USER 65532:65532
ENTRYPOINT ["edge", "--config", "/etc/edge/config.toml"]

# ----------------------------------------------------------------------------
# Lint everything
# ----------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM alpine:${ALPINE_VERSION} AS lint
RUN apk add --no-cache shellcheck yamllint
WORKDIR /repo
RUN --mount=type=bind,target=/repo \
    <<'EOF' sh
set -e
find . -name '*.sh' -not -path './node_modules/*' -print0 | xargs -0 -r shellcheck
yamllint -s deploy/
EOF

# ----------------------------------------------------------------------------
# Aggregate test reports (build with --target=test)
# ----------------------------------------------------------------------------
FROM scratch AS test
COPY --from=api-test /test-report.txt /reports/api.txt
COPY --from=web-test /repo/services/web/package.json /reports/web.package.json
COPY --from=worker-test /repo/services/worker/pyproject.toml /reports/worker.pyproject.toml
COPY --from=lint /repo /reports/lint

# ----------------------------------------------------------------------------
# Release metadata (the default target)
# ----------------------------------------------------------------------------
FROM alpine:${ALPINE_VERSION} AS release
ARG GIT_SHA
LABEL org.opencontainers.image.revision=${GIT_SHA} \
      org.opencontainers.image.title="monorepo-bundle"
COPY --from=api /api /bundle/api
COPY --from=edge /usr/local/bin/edge /bundle/edge
COPY --from=web /app /bundle/web
COPY --from=worker /venv /bundle/worker-venv
COPY <<EOF /bundle/MANIFEST
commit=${GIT_SHA}
services=api,web,worker,edge
EOF
CMD ["cat", "/bundle/MANIFEST"]
