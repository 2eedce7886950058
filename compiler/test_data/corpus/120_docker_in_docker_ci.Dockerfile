# syntax=docker/dockerfile:1
FROM docker:27-cli AS cli
FROM docker/buildx-bin:0.16 AS buildx

FROM alpine:3.20
RUN apk add --no-cache bash git make jq openssh-client ca-certificates iptables
COPY --from=cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=buildx /buildx /usr/libexec/docker/cli-plugins/docker-buildx
ENV DOCKER_HOST=tcp://docker:2376 \
    DOCKER_TLS_VERIFY=1 \
    DOCKER_CERT_PATH=/certs/client
VOLUME /certs/client
RUN docker buildx version
CMD ["bash"]
