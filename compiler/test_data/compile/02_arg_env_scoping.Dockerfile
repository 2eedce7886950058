ARG BASE=busybox
ARG VERSION=1.0
ARG ONLY_GLOBAL=g
FROM ${BASE} AS base
# VERSION is not visible until redeclared; ONLY_GLOBAL never is
RUN echo "v=$VERSION g=$ONLY_GLOBAL"
ARG VERSION
ARG EXTRA=default-extra
ENV MODE=prod
ARG MODE=from-arg
RUN echo "$VERSION $EXTRA $MODE"
ENV A=1 B=${A:-unset} C=$VERSION
LABEL version=$VERSION "quoted key"="quoted value"
RUN echo done
