FROM busybox
BOGUS thing
RUN cat <<EOF
hello
