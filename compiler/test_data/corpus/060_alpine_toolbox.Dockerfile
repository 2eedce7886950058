FROM alpine:3.20
RUN apk add --no-cache \
      bash \
      bind-tools \
      busybox-extras \
      ca-certificates \
      curl \
      git \
      iperf3 \
      iproute2 \
      jq \
      mtr \
      nmap \
      openssh-client \
      openssl \
      postgresql16-client \
      redis \
      rsync \
      socat \
      strace \
      tcpdump \
      vim \
      wget \
      yq
RUN echo 'PS1="\[\e[32m\]toolbox\[\e[0m\]:\w\$ "' >> /root/.bashrc
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl --version | head -n1
WORKDIR /root
CMD ["bash"]
