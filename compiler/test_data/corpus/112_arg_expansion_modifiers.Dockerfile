# syntax=docker/dockerfile:1
ARG IMAGE_REF=docker.io/library/alpine:3.20
ARG VARIANT

FROM ${IMAGE_REF} AS base
ARG IMAGE_REF
ARG VARIANT
ARG VERSION=v1.4.2-rc.1
ARG FULL_NAME=ghcr.io/example/app-server
ARG PATH_WITH_SLASHES=/opt/app/bin/app
ENV IMAGE_TAG=${IMAGE_REF##*:} \
    IMAGE_REPO=${IMAGE_REF%:*} \
    VERSION_NUMBER=${VERSION#v} \
    VERSION_MAJOR=${VERSION%%.*} \
    SHORT_NAME=${FULL_NAME##*/} \
    REGISTRY_HOST=${FULL_NAME%%/*} \
    FLAVOR=${VARIANT:-default} \
    SUFFIX=${VARIANT:+-${VARIANT}} \
    DOTTED=${VERSION//./_} \
    FIRST_DASH=${VERSION/-/+} \
    BIN_DIR=${PATH_WITH_SLASHES%/*}
LABEL version.full="${VERSION}" version.number="${VERSION_NUMBER}" flavor="${FLAVOR}"
RUN echo "tag=$IMAGE_TAG repo=$IMAGE_REPO major=$VERSION_MAJOR short=$SHORT_NAME host=$REGISTRY_HOST" > /build-info
RUN mkdir -p "${BIN_DIR}" && echo "${DOTTED}${SUFFIX}" > "${BIN_DIR}/VERSION"
WORKDIR ${BIN_DIR}
COPY --chmod=755 app-${VERSION_NUMBER}${SUFFIX} ./app
CMD ["./app"]
