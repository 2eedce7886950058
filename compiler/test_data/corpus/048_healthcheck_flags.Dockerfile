FROM postgres:16-alpine AS db
ENV POSTGRES_DB=app POSTGRES_USER=app
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --start-interval=1s --retries=10 \
  CMD ["pg_isready", "-U", "app", "-d", "app"]

FROM redis:7-alpine AS cache
HEALTHCHECK --interval=10s --timeout=2s CMD redis-cli ping | grep -q PONG

FROM haproxy:2.9-alpine AS lb
HEALTHCHECK NONE

FROM nginx:1.27
COPY --from=db /usr/local/bin/pg_isready /usr/local/bin/pg_isready
HEALTHCHECK --interval=30s \
            --timeout=10s \
            --retries=3 \
    CMD curl --fail --silent http://localhost/ || exit 1
