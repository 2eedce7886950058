# Sourced by the bench scripts: `start_registry DIR` starts Debian's docker-registry on a
# free port of 127.0.0.1 with its storage and log under DIR, waits until it accepts
# connections, and sets `reg_host` (127.0.0.1:PORT) and `reg_pid` (the caller stops it).
start_registry() {
    local dir=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    reg_host="127.0.0.1:$port"
    mkdir -p "$dir"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
        "$dir/data" "$reg_host" >"$dir/config.yml"
    /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    reg_pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}
