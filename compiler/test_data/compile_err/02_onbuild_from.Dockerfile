FROM busybox AS unused
ONBUILD FROM alpine

FROM busybox
