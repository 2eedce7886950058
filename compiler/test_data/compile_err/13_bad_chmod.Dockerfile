FROM busybox
COPY --chmod=rwx a /a
