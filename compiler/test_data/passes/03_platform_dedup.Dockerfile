FROM --platform=$BUILDPLATFORM busybox AS tools
RUN echo build tools once

FROM busybox
COPY --from=tools /tools /tools
