FROM busybox
--flag RUN x
