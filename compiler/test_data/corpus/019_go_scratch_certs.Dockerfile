FROM golang:1.22-alpine AS build
RUN apk add --no-cache git ca-certificates tzdata \
    && update-ca-certificates
RUN echo 'app:x:10001:10001:app:/:/sbin/nologin' > /etc/passwd.app \
    && echo 'app:x:10001:' > /etc/group.app
WORKDIR /build
COPY go.* ./
RUN go mod download && go mod verify
COPY . .
RUN CGO_ENABLED=0 go build -a -installsuffix cgo -ldflags '-extldflags "-static" -s -w' -o /app .

FROM scratch
COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /etc/passwd.app /etc/passwd
COPY --from=build /etc/group.app /etc/group
COPY --from=build /app /app
ENV TZ=UTC
USER app:app
EXPOSE 9000
ENTRYPOINT ["/app"]
