# syntax=docker/dockerfile:1.6
FROM golang:1.22 AS base
WORKDIR /src
ENV GOCACHE=/root/.cache/go-build GOMODCACHE=/go/pkg/mod

FROM base AS lint
RUN go install honnef.co/go/tools/cmd/staticcheck@2023.1.7
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    go vet ./... && staticcheck ./...

FROM base AS test
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    --network=none \
    go test -race -count=1 ./... 2>&1 | tee /tmp/test.log

FROM base AS build
ARG LDFLAGS="-s -w"
RUN --mount=type=bind,target=.,rw \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    CGO_ENABLED=0 go build -ldflags "${LDFLAGS}" -o /out/ ./cmd/...

FROM scratch AS binaries
COPY --from=build /out/ /

FROM gcr.io/distroless/base-debian12
COPY --from=build /out/api /usr/bin/api
COPY --from=build /out/worker /usr/bin/worker
ENTRYPOINT ["/usr/bin/api"]
