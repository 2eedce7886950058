# syntax=docker/dockerfile:1
FROM golang:1.22-alpine AS src
ADD https://github.com/moby/buildkit.git#v0.15.1 /src/buildkit
ADD --keep-git-dir=true https://github.com/containerd/containerd.git#v1.7.20 /src/containerd
ADD git@github.com:example-org/private-lib.git#main:pkg/errors /src/private-errors
ADD https://github.com/golang/example.git#master:hello /src/hello

FROM src AS build
WORKDIR /src/hello
RUN --mount=type=cache,target=/root/.cache/go-build go build -o /out/hello .
WORKDIR /src/containerd
RUN git describe --tags > /out/containerd.version

FROM alpine:3.20
COPY --from=build /out/ /usr/local/bin/
CMD ["hello"]
