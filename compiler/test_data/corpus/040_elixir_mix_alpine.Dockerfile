FROM elixir:1.16-alpine AS build
RUN apk add --no-cache build-base git
WORKDIR /app
ENV MIX_ENV=prod
RUN mix do local.hex --force, local.rebar --force
COPY mix.exs mix.lock ./
COPY config config
RUN mix do deps.get --only prod, deps.compile
COPY lib lib
RUN mix do compile, release worker

FROM alpine:3.19 AS app
RUN apk add --no-cache libstdc++ openssl ncurses-libs
WORKDIR /app
RUN chown nobody:nobody /app
USER nobody:nobody
COPY --from=build --chown=nobody:nobody /app/_build/prod/rel/worker ./
ENV HOME=/app
ENTRYPOINT ["bin/worker"]
CMD ["start"]
