FROM denoland/deno:alpine-1.45.2
EXPOSE 8000
WORKDIR /app
USER deno
COPY deps.ts .
RUN deno cache deps.ts
COPY --chown=deno:deno . .
RUN deno cache main.ts
CMD ["run", "--allow-net", "--allow-env", "--allow-read=/app", "main.ts"]
