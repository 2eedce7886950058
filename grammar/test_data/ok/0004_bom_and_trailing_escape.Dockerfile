FROM scratch
COPY a b
RUN echo trailing \