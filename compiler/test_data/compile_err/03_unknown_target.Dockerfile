FROM busybox AS a
FROM a AS b
