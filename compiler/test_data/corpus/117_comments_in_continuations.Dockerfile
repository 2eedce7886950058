FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
# networking tools
        curl \
        iproute2 \
        netcat-openbsd \
    # editors (indented comment)
        nano \

        vim-tiny \
# build tools
        build-essential \
    && rm -rf /var/lib/apt/lists/*

# A comment between instructions
ENV A=1 \
    # comment inside ENV continuation
    B=2 \
    C=3

LABEL a="1" \

      b="2"
CMD ["bash"]
