FROM busybox
HEALTHCHECK --interval=1s PING
