# syntax=docker/dockerfile:1
# check=skip=all
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG A=1 B
ENV K=v "Q=a b" X='y z'
ENV OLD some value here
RUN --mount=type=cache,target=/root/.cache \
    # a comment inside a continuation
    go build \

    ./...
COPY --from=build --chown=1:1 --chmod=0644 --link /src/a /src/b /dst/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar.gz /x
LABEL a=b "c d"="e f"
LABEL legacy value with spaces
MAINTAINER Jane Doe <jane@example.com>
EXPOSE 80 443/tcp 53/udp
ENTRYPOINT ["/bin/app", "--flag"]
CMD echo done
VOLUME ["/data", "/logs"]
VOLUME /a /b
USER app:app
WORKDIR /my dir
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=1s --retries=3 CMD ["curl", "-f", "http://localhost/"]
HEALTHCHECK CMD curl -f http://localhost/ || exit 1
HEALTHCHECK NONE
ONBUILD RUN echo hi
ONBUILD COPY --from=build . /app
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
CMD [bad json
