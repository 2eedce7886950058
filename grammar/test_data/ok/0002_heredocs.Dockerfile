FROM busybox
RUN <<EOF
echo "hello $HOME"
mkdir -p /app
EOF
RUN <<-"X" cat <<'Y' > /out
	tabbed and quoted: $NOT_EXPANDED
	X
second body
Y
COPY <<EOF /etc/motd
Welcome to ${NAME:-cairn}
EOF
ADD <<one <<two /dir/
1
one
2
two
RUN echo "<<NOT_A_HEREDOC" '<<NOR_THIS'
