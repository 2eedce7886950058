FROM scratch
ARG BINARY=dist/server_linux_amd64_v1/server
COPY ${BINARY} /server
COPY LICENSE /LICENSE
USER 65532:65532
ENTRYPOINT ["/server"]
CMD ["--listen=:8080"]
