FROM ocaml/opam:debian-12-ocaml-5.1 AS build
RUN sudo apt-get update && sudo apt-get install -y --no-install-recommends libev-dev libgmp-dev pkg-config libssl-dev
WORKDIR /home/opam/app
COPY --chown=opam:opam *.opam dune-project ./
RUN opam install . --deps-only --yes
COPY --chown=opam:opam . .
RUN opam exec -- dune build --profile release @install \
    && cp _build/default/bin/main.exe /home/opam/server

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends libev4 libgmp10 libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /home/opam/server /usr/local/bin/server
USER nobody
CMD ["server"]
