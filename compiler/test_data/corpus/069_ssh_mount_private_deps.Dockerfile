# syntax=docker/dockerfile:1
FROM golang:1.22-bookworm AS build
ENV GOPRIVATE=github.com/example-org/*
RUN mkdir -p -m 0700 ~/.ssh && ssh-keyscan github.com >> ~/.ssh/known_hosts
RUN git config --global url."git@github.com:".insteadOf "https://github.com/"
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=ssh \
    --mount=type=cache,target=/go/pkg/mod \
    go mod download
RUN --mount=type=ssh,id=deploy,required=true git clone git@github.com:example-org/fixtures.git /fixtures
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -o /bin/svc ./cmd/svc

FROM gcr.io/distroless/base-debian12
COPY --from=build /bin/svc /svc
COPY --from=build /fixtures/seed.json /seed.json
ENTRYPOINT ["/svc"]
