FROM busybox
RUN echo "unterminated
COPY "a b
