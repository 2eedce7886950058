FROM busybox
WORKDIR ${TOKEN:?is required}
