FROM minio/mc:RELEASE.2024-07-11T18-01-28Z AS mc

FROM alpine:3.20
RUN apk add --no-cache bash coreutils
COPY --from=mc /usr/bin/mc /usr/bin/mc
COPY --chmod=0755 <<'EOF' /usr/local/bin/mirror-buckets
#!/bin/bash
set -euo pipefail
mc alias set src "$SRC_URL" "$SRC_KEY" "$SRC_SECRET"
mc alias set dst "$DST_URL" "$DST_KEY" "$DST_SECRET"
for bucket in ${BUCKETS//,/ }; do
  mc mirror --overwrite --remove "src/$bucket" "dst/$bucket"
done
EOF
ENV BUCKETS=backups,artifacts
ENTRYPOINT ["mirror-buckets"]
