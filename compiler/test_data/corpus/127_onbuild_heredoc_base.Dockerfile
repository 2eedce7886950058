# syntax=docker/dockerfile:1
# A base image published for other teams: its triggers (heredocs included) run in their
# builds, not in this one.
FROM python:3.12-slim
ENV APP_HOME=/srv/app
WORKDIR ${APP_HOME}
ONBUILD COPY requirements.txt ./
ONBUILD RUN <<EOF
set -e
pip install --no-cache-dir -r requirements.txt
pip check
EOF
ONBUILD COPY <<-'CFG' /etc/app/defaults.toml
	[server]
	port = 8000
	CFG
ONBUILD COPY . .
CMD ["python", "-m", "app"]
