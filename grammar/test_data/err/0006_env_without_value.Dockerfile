FROM busybox
ENV lonely
