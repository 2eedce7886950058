# syntax=docker/dockerfile:1
FROM alpine:3.20

# <<- strips leading tabs from the body and from the terminator
RUN <<-EOT
	set -e
	if [ ! -d /srv ]; then
		mkdir -p /srv
	fi
	echo indented > /srv/indented.txt
	EOT

COPY <<-EOF /etc/motd
	Welcome to the build box.
		Indented with two tabs; <<- strips them all.
	EOF

RUN cat <<-SCRIPT > /usr/local/bin/hello && chmod +x /usr/local/bin/hello
	#!/bin/sh
	echo "hello from $(hostname)"
	SCRIPT

CMD ["/usr/local/bin/hello"]
