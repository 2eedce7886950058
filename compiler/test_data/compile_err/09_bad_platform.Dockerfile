FROM --platform=linux busybox
