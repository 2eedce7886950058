FROM busybox
# BuildKit parses this; the error comes when ENV expands its value.
ENV A "unterminated
