FROM busybox AS deps
RUN echo deps

FROM deps AS dev
RUN echo dev

FROM busybox AS broken
# Unreachable from --target=dev: never compiled, so its error does not fail the build.
RUN echo ${UNSET:?this would fail}
COPY --from=nonexistent-stage-or-image /x /x

FROM dev AS prod
RUN echo prod
