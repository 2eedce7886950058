FROM busybox
WORKDIR /
WORKDIR /app
WORKDIR /app
RUN pwd
