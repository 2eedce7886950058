# syntax=docker/dockerfile:1
FROM debian:bookworm-slim
ARG TINI_VERSION=v0.19.0
ADD --checksum=sha256:93dcc18adc78c65a028a84799ecf8ad40c936fdfc5f2a57b1acda5a8117fa82c \
    https://github.com/krallin/tini/releases/download/${TINI_VERSION}/tini /tini
RUN chmod +x /tini
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d \
    --chmod=0644 \
    https://raw.githubusercontent.com/moby/moby/v26.1.0/contrib/check-config.sh /usr/local/share/check-config.sh
ADD https://curl.se/ca/cacert.pem /etc/ssl/certs/cacert.pem
ADD --chown=1000:1000 --link https://example.com/releases/tool-1.2.3.tar.gz /opt/
ADD vendor.tar.gz /opt/vendor/
ADD ["static files/", "/srv/static/"]
ENTRYPOINT ["/tini", "--"]
CMD ["sleep", "infinity"]
