FROM example/onbuild-app:1 AS app
RUN echo after triggers

FROM busybox AS base
ONBUILD RUN echo triggered
ONBUILD ENV TRIGGERED=yes

FROM base
COPY --from=app /srv /srv
RUN echo child $TRIGGERED
