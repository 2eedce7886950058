ARG PG_MAJOR=16
FROM postgres:${PG_MAJOR}-bookworm AS build
ARG PG_MAJOR
ARG PGVECTOR_VERSION=0.7.4
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential \
        git \
        ca-certificates \
        postgresql-server-dev-${PG_MAJOR} \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/pgvector
ADD https://github.com/pgvector/pgvector/archive/refs/tags/v${PGVECTOR_VERSION}.tar.gz /tmp/pgvector.tar.gz
RUN tar xzf /tmp/pgvector.tar.gz --strip-components=1 \
    && make OPTFLAGS="" \
    && make install DESTDIR=/out

FROM postgres:${PG_MAJOR}-bookworm
ARG PG_MAJOR
COPY --from=build /out/usr/lib/postgresql/${PG_MAJOR}/lib/ /usr/lib/postgresql/${PG_MAJOR}/lib/
COPY --from=build /out/usr/share/postgresql/${PG_MAJOR}/extension/ /usr/share/postgresql/${PG_MAJOR}/extension/
COPY initdb/*.sql /docker-entrypoint-initdb.d/
ENV POSTGRES_INITDB_ARGS="--data-checksums"
EXPOSE 5432
