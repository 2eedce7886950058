FROM busybox
COPY a b /dest
