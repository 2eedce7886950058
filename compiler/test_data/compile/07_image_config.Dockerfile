FROM scratch
MAINTAINER someone@example.com
ENV PATH=/opt/bin:$PATH
WORKDIR app
WORKDIR sub/../data
USER 1000:1000
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/logs"]
VOLUME /cache
LABEL org.opencontainers.image.title="demo"
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=5 CMD wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
CMD echo shell form uses SHELL
ENTRYPOINT ["/entry"]
