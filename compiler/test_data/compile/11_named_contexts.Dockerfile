FROM base AS b
RUN echo from-named-image

FROM scratch
COPY --from=extra /x /x
COPY --from=b /etc/hostname /h
