# syntax=docker/dockerfile:1.7
# A self-hosted CI runner image: one toolchain per stage, assembled at the end so that
# each language can be rebuilt independently and cached separately.

ARG UBUNTU_VERSION=22.04
ARG GO_VERSION=1.22.5
ARG NODE_VERSION=20.15.1
ARG PYTHON_VERSION=3.12
ARG RUST_VERSION=1.79.0
ARG JAVA_VERSION=21
ARG RUNNER_VERSION=2.317.0
ARG DOCKER_CLI_VERSION=26.1.4
ARG KUBECTL_VERSION=1.30.2
ARG HELM_VERSION=3.15.2

############################################################
# base: OS packages shared by every toolchain
############################################################
FROM ubuntu:${UBUNTU_VERSION} AS base
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    TZ=Etc/UTC
RUN rm -f /etc/apt/apt.conf.d/docker-clean \
    && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get install -y --no-install-recommends \
        apt-transport-https \
        build-essential \
        ca-certificates \
        curl \
        dnsutils \
        file \
        git \
        git-lfs \
        gnupg \
        iputils-ping \
        jq \
        libssl-dev \
        lsb-release \
        make \
        openssh-client \
        pkg-config \
        rsync \
        shellcheck \
        software-properties-common \
        sudo \
        tar \
        tzdata \
        unzip \
        wget \
        xz-utils \
        zip \
        zstd
RUN git lfs install --system

############################################################
# go toolchain
############################################################
FROM base AS go
ARG GO_VERSION
ARG TARGETARCH
RUN curl -fsSL "https://go.dev/dl/go${GO_VERSION}.linux-${TARGETARCH}.tar.gz" -o /tmp/go.tgz \
    && tar -C /usr/local -xzf /tmp/go.tgz \
    && rm /tmp/go.tgz
ENV PATH=/usr/local/go/bin:$PATH \
    GOPATH=/opt/go
RUN --mount=type=cache,target=/root/.cache/go-build \
    go install golang.org/x/tools/cmd/goimports@v0.22.0 \
    && go install github.com/golangci/golangci-lint/cmd/golangci-lint@v1.59.1 \
    && go install gotest.tools/gotestsum@v1.12.0

############################################################
# node toolchain
############################################################
FROM base AS node
ARG NODE_VERSION
ARG TARGETARCH
RUN case "${TARGETARCH}" in \
        amd64) NODE_ARCH=x64 ;; \
        arm64) NODE_ARCH=arm64 ;; \
        *) echo "unsupported ${TARGETARCH}"; exit 1 ;; \
    esac \
    && curl -fsSL "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-${NODE_ARCH}.tar.xz" \
        | tar -xJ -C /usr/local --strip-components=1 \
    && node --version \
    && npm --version
RUN corepack enable \
    && corepack prepare pnpm@9.4.0 --activate \
    && corepack prepare yarn@4.3.1 --activate

############################################################
# python toolchain
############################################################
FROM base AS python
ARG PYTHON_VERSION
ARG DEBIAN_FRONTEND=noninteractive
RUN add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        python${PYTHON_VERSION} \
        python${PYTHON_VERSION}-dev \
        python${PYTHON_VERSION}-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python${PYTHON_VERSION} -m venv /opt/python \
    && /opt/python/bin/pip install --no-cache-dir --upgrade pip setuptools wheel \
    && /opt/python/bin/pip install --no-cache-dir \
        black==24.4.2 \
        mypy==1.10.1 \
        poetry==1.8.3 \
        pre-commit==3.7.1 \
        pytest==8.2.2 \
        ruff==0.5.0 \
        tox==4.15.1

############################################################
# rust toolchain
############################################################
FROM base AS rust
ARG RUST_VERSION
ENV RUSTUP_HOME=/opt/rustup \
    CARGO_HOME=/opt/cargo \
    PATH=/opt/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain ${RUST_VERSION} \
    && rustup component add clippy rustfmt \
    && chmod -R a+w ${RUSTUP_HOME} ${CARGO_HOME}
RUN --mount=type=cache,target=/opt/cargo/registry \
    cargo install --locked cargo-nextest cargo-deny cargo-audit

############################################################
# java toolchain
############################################################
FROM eclipse-temurin:${JAVA_VERSION}-jdk-jammy AS java

FROM base AS maven
ARG MAVEN_VERSION=3.9.8
ARG MAVEN_SHA256=b19dd77d846336b6299e3cfc8aea2c8f1427e199c7b2a77c57be7829b4a1c116
ADD --checksum=sha256:${MAVEN_SHA256} \
    https://archive.apache.org/dist/maven/maven-3/${MAVEN_VERSION}/binaries/apache-maven-${MAVEN_VERSION}-bin.tar.gz \
    /tmp/maven.tgz
RUN mkdir -p /opt/maven \
    && tar -xzf /tmp/maven.tgz -C /opt/maven --strip-components=1 \
    && rm /tmp/maven.tgz

############################################################
# cloud and container CLIs
############################################################
FROM base AS clis
ARG DOCKER_CLI_VERSION
ARG KUBECTL_VERSION
ARG HELM_VERSION
ARG TARGETARCH
WORKDIR /out
RUN curl -fsSL "https://download.docker.com/linux/static/stable/$(uname -m)/docker-${DOCKER_CLI_VERSION}.tgz" \
        | tar -xz --strip-components=1 docker/docker \
    && curl -fsSLo kubectl "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl" \
    && chmod +x kubectl \
    && curl -fsSL "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" \
        | tar -xz --strip-components=1 "linux-${TARGETARCH}/helm"
RUN ./docker --version && ./kubectl version --client && ./helm version

############################################################
# the runner agent
############################################################
FROM base AS agent
ARG RUNNER_VERSION
ARG TARGETARCH
WORKDIR /actions-runner
RUN case "${TARGETARCH}" in amd64) A=x64 ;; arm64) A=arm64 ;; esac \
    && curl -fsSL "https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/actions-runner-linux-${A}-${RUNNER_VERSION}.tar.gz" \
        | tar -xz \
    && ./bin/installdependencies.sh

############################################################
# final image
############################################################
FROM base AS runner
ARG RUNNER_VERSION
LABEL org.opencontainers.image.title="ci-runner" \
      org.opencontainers.image.version="${RUNNER_VERSION}" \
      org.opencontainers.image.description="Self-hosted runner with Go, Node, Python, Rust and Java"

COPY --link --from=go /usr/local/go /usr/local/go
COPY --link --from=go /opt/go/bin /usr/local/bin
COPY --link --from=node /usr/local/bin/node /usr/local/bin/node
COPY --link --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
COPY --link --from=python /opt/python /opt/python
COPY --link --from=rust /opt/rustup /opt/rustup
COPY --link --from=rust /opt/cargo /opt/cargo
COPY --link --from=java /opt/java/openjdk /opt/java/openjdk
COPY --link --from=maven /opt/maven /opt/maven
COPY --link --from=clis /out/docker /out/kubectl /out/helm /usr/local/bin/
COPY --link --from=agent /actions-runner /actions-runner

ENV GOROOT=/usr/local/go \
    GOPATH=/home/runner/go \
    RUSTUP_HOME=/opt/rustup \
    CARGO_HOME=/opt/cargo \
    JAVA_HOME=/opt/java/openjdk \
    MAVEN_HOME=/opt/maven
ENV PATH=/usr/local/go/bin:/opt/cargo/bin:/opt/python/bin:/opt/java/openjdk/bin:/opt/maven/bin:$PATH

RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s /usr/local/lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && ln -s /usr/local/lib/node_modules/corepack/dist/corepack.js /usr/local/bin/corepack

RUN groupadd --gid 1001 runner \
    && useradd --uid 1001 --gid runner --shell /bin/bash --create-home runner \
    && usermod -aG sudo runner \
    && echo "%sudo ALL=(ALL:ALL) NOPASSWD:ALL" > /etc/sudoers.d/runner \
    && chown -R runner:runner /actions-runner

COPY --chmod=0755 <<'EOF' /usr/local/bin/entrypoint.sh
#!/usr/bin/env bash
set -euo pipefail

: "${RUNNER_URL:?RUNNER_URL must be set}"
: "${RUNNER_TOKEN:?RUNNER_TOKEN must be set}"
RUNNER_NAME="${RUNNER_NAME:-$(hostname)}"
RUNNER_LABELS="${RUNNER_LABELS:-self-hosted,linux}"

cleanup() {
    echo "Removing runner ${RUNNER_NAME}"
    ./config.sh remove --token "${RUNNER_TOKEN}" || true
}
trap cleanup EXIT INT TERM

cd /actions-runner
./config.sh \
    --unattended \
    --replace \
    --url "${RUNNER_URL}" \
    --token "${RUNNER_TOKEN}" \
    --name "${RUNNER_NAME}" \
    --labels "${RUNNER_LABELS}" \
    --work /home/runner/_work

./run.sh & wait $!
EOF

COPY --chmod=0644 <<EOF /etc/profile.d/toolchains.sh
export GOROOT=/usr/local/go
export RUSTUP_HOME=/opt/rustup
export CARGO_HOME=/opt/cargo
export JAVA_HOME=/opt/java/openjdk
export RUNNER_VERSION=${RUNNER_VERSION}
EOF

RUN <<EOF
set -eux
go version
node --version
/opt/python/bin/python --version
rustc --version
java -version
mvn -v
EOF

USER runner
WORKDIR /home/runner
VOLUME ["/home/runner/_work"]
HEALTHCHECK --interval=1m --timeout=10s --start-period=2m \
    CMD pgrep -f Runner.Listener >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
