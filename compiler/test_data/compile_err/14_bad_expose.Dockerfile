FROM busybox
EXPOSE 80/icmp
