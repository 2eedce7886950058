FROM golang:1.22-alpine3.19 AS builder
RUN apk add --no-cache build-base sqlite-dev
ENV CGO_ENABLED=1 GOFLAGS=-mod=readonly
WORKDIR /app
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -tags "sqlite_omit_load_extension libsqlite3" -ldflags "-linkmode external -extldflags -static" -o /usr/local/bin/notes ./cmd/notes

FROM alpine:3.19
RUN apk add --no-cache sqlite-libs ca-certificates
COPY --from=builder /usr/local/bin/notes /usr/local/bin/notes
VOLUME ["/data"]
ENV NOTES_DB=/data/notes.db
EXPOSE 8090
CMD ["notes", "serve", "--http=0.0.0.0:8090"]
