FROM scratch
VOLUME []
