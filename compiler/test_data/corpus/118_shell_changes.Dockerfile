FROM ubuntu:22.04
SHELL ["/bin/bash", "-euxo", "pipefail", "-c"]
RUN apt-get update && apt-get install -y --no-install-recommends zsh fish curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL https://example.org/install.sh | bash -s -- --prefix /opt/tool
SHELL ["/usr/bin/zsh", "-c"]
RUN setopt extendedglob && print -l /etc/*.conf(.N) > /tmp/confs.txt
SHELL ["/usr/bin/fish", "-c"]
RUN set -gx FOO bar; and echo $FOO > /tmp/fish.txt
SHELL ["/bin/sh", "-c"]
RUN echo "back to sh" && cat /tmp/confs.txt /tmp/fish.txt
HEALTHCHECK CMD test -f /tmp/fish.txt
CMD ["/usr/bin/zsh"]
