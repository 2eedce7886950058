# syntax=docker/dockerfile:1
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc \
    --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev

FROM python:3.12-slim AS pydeps
RUN --mount=type=secret,id=pip_conf,target=/etc/pip.conf,required=true \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install --prefix=/install -r /tmp/requirements.txt

FROM node:20-bookworm-slim
RUN --mount=type=secret,id=aws,target=/root/.aws/credentials \
    --mount=type=secret,id=GITHUB_TOKEN,env=GITHUB_TOKEN \
    --mount=type=secret,id=sentry_auth,uid=1000,gid=1000,mode=0400 \
    test -n "$GITHUB_TOKEN" && echo "token present"
COPY --from=deps /app/node_modules /app/node_modules
COPY --from=pydeps /install /usr/local
COPY . /app
WORKDIR /app
CMD ["node", "index.js"]
