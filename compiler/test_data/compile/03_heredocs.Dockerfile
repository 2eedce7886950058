FROM busybox
ARG NAME=cairn
RUN <<EOF
echo "hello $NAME"
mkdir -p /app
EOF
RUN <<EOF
#!/bin/sh -e
echo script
EOF
RUN cat <<A > /a.txt && cat <<'B' > /b.txt
first $NAME
A
second $NAME
B
COPY <<EOF /etc/motd
Welcome to ${NAME}, "quotes" stay
EOF
COPY <<"RAW" <<cooked /etc/
raw ${NAME}
RAW
cooked ${NAME}
cooked
RUN <<-EOF
	echo tabs stripped
	EOF
