# syntax=docker/dockerfile:1
FROM busybox:1.36 AS gen
WORKDIR /out
RUN <<FILE1 cat > file1 && <<FILE2 cat > file2
I am
first
FILE1
I am
second
FILE2

RUN 3<<EOF cat /dev/fd/3 > fd3.txt
read through file descriptor three
EOF

COPY <<a.conf <<b.conf /out/conf/
key=a
a.conf
key=b
b.conf

FROM busybox:1.36
COPY --from=gen /out/ /data/
RUN <<EOF
set -e
test -f /data/file1
test -f /data/file2
cat /data/conf/a.conf /data/conf/b.conf
EOF
