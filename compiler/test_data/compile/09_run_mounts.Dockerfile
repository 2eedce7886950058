FROM busybox AS assets
RUN mkdir -p /assets && echo a > /assets/a

FROM busybox
WORKDIR /w
RUN --mount=type=cache,target=/root/.cache,sharing=locked,id=pip \
    --mount=type=bind,from=assets,source=/assets,target=/mnt/assets \
    --mount=type=bind,target=ctx,rw \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=secret,id=token,required=true \
    --mount=type=secret,id=api,env=API_KEY \
    --network=none \
    ls /mnt/assets /w/ctx
RUN --mount=type=ssh echo ssh
RUN --network=host --security=insecure ["/bin/echo", "exec form"]
