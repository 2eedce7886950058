# syntax=docker/dockerfile:1
FROM rust:1.80-slim AS test
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo fetch --locked
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=tmpfs,target=/src/target,size=2g \
    --mount=type=cache,target=/usr/local/cargo/registry \
    --network=none \
    cargo test --offline --locked --release
RUN --network=host curl -fsS http://localhost:8500/v1/status/leader || true
RUN --security=sandbox true

FROM test AS audit
RUN --network=default cargo install cargo-audit && cargo audit

FROM scratch
COPY --from=test /src/Cargo.lock /Cargo.lock
