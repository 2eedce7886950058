FROM busybox
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/files/tool.tar.gz /opt/
ADD https://example.com/download?id=3 /opt/named
ADD --keep-git-dir=true https://github.com/example/repo.git#v1.2:sub /src/
ADD vendor.tar.gz /vendor/
COPY --chown=app:staff --chmod=0640 *.conf /etc/app/
COPY --link --parents --exclude=*.tmp src/ docs/ /app/
COPY --from=docker.io/library/alpine:3.20 /etc/alpine-release /
