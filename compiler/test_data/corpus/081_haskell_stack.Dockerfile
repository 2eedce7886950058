FROM haskell:9.6-slim AS build
WORKDIR /opt/build
RUN stack config set system-ghc --global true
COPY stack.yaml package.yaml stack.yaml.lock /opt/build/
RUN --mount=type=cache,target=/root/.stack \
    stack build --only-dependencies --no-terminal
COPY . /opt/build
RUN --mount=type=cache,target=/root/.stack \
    stack build --no-terminal --copy-bins --local-bin-path /opt/bin

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgmp10 netbase ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/bin/shortener-exe /usr/local/bin/shortener
EXPOSE 8081
ENTRYPOINT ["shortener"]
