ARG REGISTRY=docker.io
ARG BASE_IMAGE=library/debian
ARG BASE_TAG=bookworm-slim
ARG NODE_MAJOR=20
ARG BUILD_ID

FROM ${REGISTRY}/${BASE_IMAGE}:${BASE_TAG} AS os
ARG BUILD_ID
ARG BASE_TAG
LABEL build.id="${BUILD_ID:-local}" base.tag=$BASE_TAG
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*

FROM node:${NODE_MAJOR}-bookworm-slim AS node

FROM os
ARG NODE_MAJOR
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && node --version | grep -q "^v${NODE_MAJOR}\."
CMD ["node"]
