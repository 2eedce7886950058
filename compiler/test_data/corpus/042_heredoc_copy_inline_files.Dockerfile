# syntax=docker/dockerfile:1
FROM nginx:1.25-alpine

ARG SERVER_NAME=example.test
ARG UPSTREAM=app:8080

COPY <<EOF /etc/nginx/conf.d/default.conf
upstream backend {
    server ${UPSTREAM};
    keepalive 32;
}
server {
    listen 80;
    server_name ${SERVER_NAME};
    location / {
        proxy_pass http://backend;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
    }
}
EOF

COPY <<robots.txt <<humans.txt /usr/share/nginx/html/
User-agent: *
Disallow: /admin/
robots.txt
/* TEAM */
Ops: ops@example.test
humans.txt

COPY --chmod=0755 <<"EOF" /docker-entrypoint.d/40-print-env.sh
#!/bin/sh
echo "serving $SERVER_NAME"
EOF

COPY --chown=nginx:nginx --chmod=644 <<EOF /usr/share/nginx/html/version.json
{"server": "${SERVER_NAME}", "upstream": "${UPSTREAM}"}
EOF

EXPOSE 80
