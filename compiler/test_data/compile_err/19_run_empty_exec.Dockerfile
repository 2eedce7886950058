FROM scratch
RUN []
