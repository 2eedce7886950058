FROM golang:1.21-bookworm AS build
WORKDIR /go/src/app
COPY . .
RUN go mod download
RUN go vet -v ./...
RUN go test -v ./...
RUN CGO_ENABLED=0 go build -o /go/bin/app

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /go/bin/app /
USER nonroot:nonroot
CMD ["/app"]
