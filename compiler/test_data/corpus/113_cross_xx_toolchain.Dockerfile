# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM tonistiigi/xx:1.4.0 AS xx

FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
COPY --from=xx / /
RUN apk add --no-cache clang lld file
ARG TARGETPLATFORM
RUN xx-apk add --no-cache musl-dev gcc sqlite-dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ENV CGO_ENABLED=1
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build,id=gobuild-$TARGETPLATFORM \
    xx-go build -ldflags "-linkmode external -extldflags -static" -o /out/app ./cmd/app \
    && xx-verify --static /out/app

FROM --platform=$BUILDPLATFORM rust:1.80-alpine AS rustbuild
COPY --from=xx / /
RUN apk add --no-cache clang lld
ARG TARGETPLATFORM
RUN xx-apk add --no-cache musl-dev
WORKDIR /src
COPY tools/ ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    xx-cargo build --release --target-dir /build \
    && xx-verify /build/$(xx-cargo --print-target-triple)/release/helper \
    && cp /build/$(xx-cargo --print-target-triple)/release/helper /out-helper

FROM alpine:3.20
COPY --from=build /out/app /usr/bin/app
COPY --from=rustbuild /out-helper /usr/bin/helper
ENTRYPOINT ["app"]
