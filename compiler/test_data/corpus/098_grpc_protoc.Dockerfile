FROM debian:bookworm-slim AS protoc
ARG PROTOC_VERSION=27.2
RUN apt-get update && apt-get install -y --no-install-recommends curl unzip ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSLo /tmp/protoc.zip \
        "https://github.com/protocolbuffers/protobuf/releases/download/v${PROTOC_VERSION}/protoc-${PROTOC_VERSION}-linux-x86_64.zip" \
    && unzip /tmp/protoc.zip -d /usr/local \
    && rm /tmp/protoc.zip

FROM protoc AS gen
WORKDIR /work
COPY proto/ proto/
RUN mkdir -p out/cpp out/java out/python \
    && protoc -I proto \
        --cpp_out=out/cpp \
        --java_out=out/java \
        --python_out=out/python \
        proto/*.proto

FROM scratch AS export
COPY --from=gen /work/out /
