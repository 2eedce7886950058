FROM scratch
LABEL "" value
