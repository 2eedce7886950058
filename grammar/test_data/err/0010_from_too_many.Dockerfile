FROM busybox AS a b
