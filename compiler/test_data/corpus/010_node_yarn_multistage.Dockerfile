# syntax=docker/dockerfile:1
ARG NODE_VERSION=18.20.4

FROM node:${NODE_VERSION}-bullseye-slim AS deps
WORKDIR /app
COPY package.json yarn.lock ./
RUN --mount=type=cache,target=/usr/local/share/.cache/yarn \
    yarn install --frozen-lockfile --network-timeout 600000

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN yarn build && yarn install --frozen-lockfile --production --ignore-scripts --prefer-offline

FROM node:${NODE_VERSION}-bullseye-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s CMD node dist/healthcheck.js || exit 1
CMD ["node", "dist/main.js"]
