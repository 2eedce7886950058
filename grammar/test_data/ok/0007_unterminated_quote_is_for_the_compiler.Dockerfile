# BuildKit's parser accepts unterminated quotes: the word runs to the end of the line and
# the compile step's expansion reports it. An escaped escape character at the end of a
# line does not continue it.
FROM busybox
RUN echo "unterminated
COPY src "dest dir
ENV A "unterminated
LABEL l='x y
ENV C trailing\\
ENV D next
