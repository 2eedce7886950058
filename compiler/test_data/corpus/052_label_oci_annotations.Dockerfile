# syntax=docker/dockerfile:1
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z

FROM alpine:3.20
ARG VERSION
ARG REVISION
ARG CREATED
LABEL org.opencontainers.image.title="metrics-relay" \
      org.opencontainers.image.description="Relays StatsD metrics to Prometheus remote write" \
      org.opencontainers.image.url="https://example.org/metrics-relay" \
      org.opencontainers.image.source="https://git.example.org/obs/metrics-relay" \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.created=$CREATED \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Example Org"
LABEL "com.example.team"="observability" com.example.tier=backend
LABEL multi.word="value with spaces" other='single quoted value'
COPY metrics-relay /usr/bin/metrics-relay
EXPOSE 8125/udp 9102/tcp
ENTRYPOINT ["/usr/bin/metrics-relay"]
