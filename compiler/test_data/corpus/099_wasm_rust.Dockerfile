# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM rust:1.80 AS build
RUN rustup target add wasm32-wasip1 wasm32-unknown-unknown
RUN cargo install wasm-bindgen-cli --version 0.2.92 --locked
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --target wasm32-wasip1 -p plugin \
    && cargo build --release --target wasm32-unknown-unknown -p web \
    && mkdir -p /out \
    && cp target/wasm32-wasip1/release/plugin.wasm /out/ \
    && wasm-bindgen --target web --out-dir /out/web target/wasm32-unknown-unknown/release/web.wasm

FROM scratch
COPY --from=build /out/plugin.wasm /plugin.wasm
ENTRYPOINT ["/plugin.wasm"]
