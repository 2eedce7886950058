FROM haproxy:2.9
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends lua-json socat \
    && rm -rf /var/lib/apt/lists/*
COPY --chown=haproxy:haproxy haproxy.cfg /usr/local/etc/haproxy/haproxy.cfg
COPY --chown=haproxy:haproxy lua/ /usr/local/etc/haproxy/lua/
COPY --chown=haproxy:haproxy certs/ /usr/local/etc/haproxy/certs/
RUN haproxy -c -f /usr/local/etc/haproxy/haproxy.cfg || true
USER haproxy
EXPOSE 80 443 8404
