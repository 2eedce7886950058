# syntax=docker/dockerfile:1
FROM --platform=linux/amd64 debian:bookworm-slim AS amd64-only
RUN dpkg --print-architecture > /arch

FROM --platform=$TARGETPLATFORM alpine:3.20 AS target
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN echo "built on ${BUILDPLATFORM} for ${TARGETPLATFORM}" > /platforms

FROM --platform=${BUILDPLATFORM} alpine:3.20 AS host-tools
ARG BUILDOS
ARG BUILDARCH
RUN echo "${BUILDOS}/${BUILDARCH}" > /build-arch

FROM alpine:3.20
COPY --from=amd64-only /arch /info/legacy-arch
COPY --from=target /platforms /info/platforms
COPY --from=host-tools /build-arch /info/build-arch
CMD ["cat", "/info/legacy-arch", "/info/platforms", "/info/build-arch"]
