FROM erlang:27-alpine AS builder
RUN apk add --no-cache git build-base
WORKDIR /buildroot
COPY rebar.config rebar.lock ./
RUN rebar3 compile --deps_only
COPY apps apps
COPY config config
RUN rebar3 as prod release

FROM alpine:3.20
RUN apk add --no-cache openssl ncurses-libs libstdc++
COPY --from=builder /buildroot/_build/prod/rel/chat /chat
EXPOSE 8080 4369 9100-9155
ENV RELX_REPLACE_OS_VARS=true NODE_NAME=chat@127.0.0.1
CMD ["/chat/bin/chat", "foreground"]
