FROM busybox AS a
ENTRYPOINT ["/bin/sh"]

FROM busybox AS b
CMD ["keep"]
ENTRYPOINT ["/bin/echo"]

FROM a
COPY --from=b /etc/passwd /b-passwd
HEALTHCHECK NONE
