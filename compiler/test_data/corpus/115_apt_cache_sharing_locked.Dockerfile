# syntax=docker/dockerfile:1
FROM ubuntu:24.04 AS base
RUN rm -f /etc/apt/apt.conf.d/docker-clean; \
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache

FROM base AS tools-a
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get --no-install-recommends install -y gcc make

FROM base AS tools-b
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get --no-install-recommends install -y python3 python3-pip

FROM base AS scratchpad
RUN --mount=type=cache,id=scratch,target=/scratch,sharing=private \
    --mount=type=cache,id=shared-ccache,target=/ccache,sharing=shared,mode=0777 \
    --mount=type=cache,target=/root/.cache,from=tools-a,source=/usr/share/doc \
    ls /scratch /ccache

FROM base
COPY --from=tools-a /usr/bin/gcc /usr/bin/make /usr/local/bin/
COPY --from=tools-b /usr/bin/python3 /usr/local/bin/
COPY --from=scratchpad /etc/hostname /scratchpad-hostname
