FROM busybox
RUN --network=none --security=sandbox --mount=type=secret,id=tok,required=true -- cat /run/secrets/tok
COPY --exclude=*.md --parents ./a/**/b.txt /out/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.12 /bk
COPY ["file with spaces.txt", "/dest dir/"]
COPY "quoted src" 'single quoted' /x/
EXPOSE ${PORT:-8080}
