# syntax=docker/dockerfile:1
FROM alpine:3.20 AS toolchain
RUN apk add --no-cache protobuf protobuf-dev && mkdir -p /opt/include \
    && cp -r /usr/include/google /opt/include/

FROM golang:1.22-alpine AS codegen
RUN go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.34.2 \
    && go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.4.0
RUN --mount=type=bind,from=toolchain,source=/usr/bin/protoc,target=/usr/local/bin/protoc \
    --mount=type=bind,from=toolchain,source=/opt/include,target=/opt/include \
    --mount=type=bind,source=api,target=/api \
    mkdir -p /gen && protoc -I /api -I /opt/include \
        --go_out=/gen --go_opt=paths=source_relative \
        --go-grpc_out=/gen --go-grpc_opt=paths=source_relative \
        /api/v1/service.proto

FROM golang:1.22-alpine AS build
WORKDIR /src
RUN --mount=type=bind,target=/src,rw \
    --mount=type=bind,from=codegen,source=/gen,target=/src/gen \
    --mount=type=cache,target=/go/pkg/mod \
    go build -o /out/server ./cmd/server

FROM alpine:3.20
COPY --from=build /out/server /server
CMD ["/server"]
