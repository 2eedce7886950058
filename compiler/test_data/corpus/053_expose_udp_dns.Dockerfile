FROM alpine:3.19
RUN apk add --no-cache coredns bind-tools
COPY Corefile /etc/coredns/Corefile
EXPOSE 53 53/udp
EXPOSE 9153/tcp
EXPOSE 5353/udp 8080
USER nobody
ENTRYPOINT ["coredns", "-conf", "/etc/coredns/Corefile"]
