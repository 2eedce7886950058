FROM scratch
COPY ["only-one"]
