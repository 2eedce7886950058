# syntax=docker/dockerfile:1.7-labs
FROM node:20-alpine AS build
WORKDIR /repo
# Keep the directory structure of every package.json, skip the test fixtures.
COPY --parents packages/*/package.json apps/*/package.json ./
COPY --exclude=**/*.test.ts --exclude=**/__fixtures__ . .
RUN npm ci && npm run build --workspaces

FROM alpine:3.20
RUN addgroup -S app -g 1500 && adduser -S app -u 1500 -G app
COPY --link --from=build /repo/apps/cli/dist/ /opt/cli/
COPY --link --chown=1500:1500 --chmod=0755 scripts/entrypoint.sh /usr/local/bin/entrypoint
COPY --chown=app:app --chmod=0640 config/ /etc/app/
COPY --link --parents --from=build /repo/./packages/*/dist /opt/packages/
COPY --exclude=*.md --exclude=*.txt docs/ /usr/share/doc/app/
COPY ["LICENSE", "NOTICE", "/usr/share/licenses/app/"]
USER app
ENTRYPOINT ["entrypoint"]
