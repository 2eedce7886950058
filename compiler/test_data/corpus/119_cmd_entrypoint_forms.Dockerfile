FROM alpine:3.20 AS shell-form
ENTRYPOINT exec top -b
CMD -d 5

FROM alpine:3.20 AS exec-form
ENTRYPOINT ["top", "-b"]
CMD ["-c"]

FROM alpine:3.20 AS exec-with-escapes
CMD ["sh", "-c", "echo \"quoted $HOME\" && printf '%s\\n' a b"]

FROM alpine:3.20 AS json-like-but-not
CMD [not json]

FROM alpine:3.20 AS empty-entrypoint
ENTRYPOINT []
CMD ["echo", "from cmd"]

FROM alpine:3.20
COPY --from=shell-form /etc/os-release /a
COPY --from=exec-form /etc/os-release /b
COPY --from=exec-with-escapes /etc/os-release /c
COPY --from=json-like-but-not /etc/os-release /d
COPY --from=empty-entrypoint /etc/os-release /e
ENTRYPOINT ["/bin/sh", "-c", "cat /a /b /c /d /e"]
