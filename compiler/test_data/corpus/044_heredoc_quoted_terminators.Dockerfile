# syntax=docker/dockerfile:1
FROM python:3.12-alpine
ARG GREETING=hello
ENV APP_DIR=/srv/app

# Unquoted terminator: ${GREETING} expands at build time.
RUN <<EOF
mkdir -p $APP_DIR
echo "${GREETING} from build" > $APP_DIR/build.txt
EOF

# Single-quoted terminator: no expansion, the shell sees $HOME literally.
RUN <<'EOF'
echo 'export PS1="[\u@\h \W]$ "' >> /etc/profile
echo "home is $HOME" > /tmp/home.txt
EOF

# Double-quoted terminator: also no expansion.
COPY <<"PYEOF" /srv/app/main.py
import os
print(os.environ.get("GREETING", "${GREETING} stays literal"))
PYEOF

RUN <<-"END"
	python3 /srv/app/main.py
	END

WORKDIR /srv/app
CMD ["python3", "main.py"]
