# syntax=docker/dockerfile:1.4
FROM debian:bookworm-slim

ARG APP_USER=svc
ARG APP_HOME=/opt/svc

RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl jq
rm -rf /var/lib/apt/lists/*
EOF

RUN <<EOF bash
set -euo pipefail
groupadd --system "${APP_USER}"
useradd --system --gid "${APP_USER}" --home-dir "${APP_HOME}" --create-home "${APP_USER}"
for d in bin etc log run; do
  mkdir -p "${APP_HOME}/$d"
done
chown -R "${APP_USER}:${APP_USER}" "${APP_HOME}"
EOF

RUN python3 <<EOF || true
import sys
print("python", sys.version)
EOF

RUN <<'EOF'
cat > /usr/local/bin/wait-for <<'INNER'
#!/bin/sh
host="$1"; port="$2"; shift 2
until nc -z "$host" "$port"; do sleep 1; done
exec "$@"
INNER
chmod +x /usr/local/bin/wait-for
EOF

WORKDIR ${APP_HOME}
USER ${APP_USER}
CMD ["/bin/sh", "-c", "echo ready && sleep infinity"]
