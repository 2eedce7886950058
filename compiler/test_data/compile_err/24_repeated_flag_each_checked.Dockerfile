FROM scratch
RUN --network=bogus --network=none true
