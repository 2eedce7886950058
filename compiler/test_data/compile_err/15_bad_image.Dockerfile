FROM Busybox:latest
