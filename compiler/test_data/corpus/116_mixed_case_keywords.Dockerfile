from alpine:3.20 as build
run apk add --no-cache make gcc musl-dev
workdir /src
copy . .
Run make release

From alpine:3.20
Copy --from=build /src/bin/tool /usr/local/bin/tool
Env TOOL_HOME=/var/lib/tool
Label maintainer=ops@example.com
expose 7000
Volume /var/lib/tool
user nobody
entrypoint ["tool"]
cmd ["--help"]
