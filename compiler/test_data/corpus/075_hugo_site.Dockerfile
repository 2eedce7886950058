ARG HUGO_VERSION=0.128.0
FROM golang:1.22-alpine AS hugo
ARG HUGO_VERSION
RUN apk add --no-cache git gcc g++ musl-dev
RUN CGO_ENABLED=1 go install -tags extended github.com/gohugoio/hugo@v${HUGO_VERSION}

FROM alpine:3.20 AS site
RUN apk add --no-cache libstdc++ git
COPY --from=hugo /go/bin/hugo /usr/local/bin/hugo
WORKDIR /site
COPY . .
ARG BASE_URL=https://blog.example.org/
RUN hugo --gc --minify --baseURL "${BASE_URL}"

FROM caddy:2.8-alpine
COPY --from=site /site/public /srv
COPY <<EOF /etc/caddy/Caddyfile
:80 {
	root * /srv
	encode zstd gzip
	file_server
	header /assets/* Cache-Control "max-age=31536000"
}
EOF
EXPOSE 80
