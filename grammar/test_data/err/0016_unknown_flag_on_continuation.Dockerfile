FROM busybox
RUN --mount=type=cache,target=/x \
    --frob=1 make
