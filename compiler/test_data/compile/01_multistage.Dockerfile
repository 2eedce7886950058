FROM busybox AS build
WORKDIR /src
COPY . .
RUN make && make install DESTDIR=/out

FROM busybox AS test
COPY --from=build /out /
RUN run-tests

FROM scratch
COPY --from=build /out/bin/app /usr/bin/app
COPY --from=0 /src/README /doc/
CMD ["app"]
