# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM rust:1.80-alpine AS build
ARG TARGETARCH
RUN apk add --no-cache musl-dev clang lld
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /rust_target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust_target ;; \
      *) echo "unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
    && rustup target add "$(cat /rust_target)"
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=clang \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=clang \
    RUSTFLAGS="-C link-arg=-fuse-ld=lld"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=target-$TARGETARCH \
    cargo build --release --target "$(cat /rust_target)" \
    && cp target/"$(cat /rust_target)"/release/ripcat /ripcat

FROM scratch
COPY --from=build /ripcat /ripcat
ENTRYPOINT ["/ripcat"]
