FROM busybox AS a
COPY go.mod /
RUN echo shared

FROM busybox AS b
COPY go.mod /
RUN echo shared

FROM scratch
COPY --from=a /x /a
COPY --from=b /x /b
