#!/usr/bin/env bash
# Seeds fuzz/corpus/TARGET/ from the project's test data (nothing binary is committed):
# the compile snapshots' Dockerfiles, their IR in MessagePack (compiled by `cairn`),
# .dockerignore patterns from the tests, and small tars with the hostile shapes.
set -euo pipefail
cd "$(dirname "$0")"
root=..
cairn=${CAIRN:-$root/target/debug/cairn}
mkdir -p corpus/{dockerfile,expand,dockerignore,ir_decode,tar_unpack}
for f in $root/compiler/test_data/compile/*.Dockerfile $root/examples/*/Dockerfile; do
    [ -f "$f" ] || continue
    n=$(basename "$(dirname "$f")")-$(basename "$f")
    cp "$f" "corpus/dockerfile/$n"
    if [ -x "$cairn" ]; then
        "$cairn" compile -f "$f" --format msgpack -o "corpus/ir_decode/$n.ir" "$(dirname "$f")" 2>/dev/null || true
    fi
done
printf '%s' '${a:-x}${b//y/z}' > corpus/expand/subst
printf '%s\0%s\0%s' '"$a"-${b%%.*}-\$c' 'one two' 'v.1.2' > corpus/expand/quotes
printf '%s' '${a:+${b:-${c:?err}}}' > corpus/expand/nested
printf '%s\n%s' '**/*.log' 'a/b/c.log' > corpus/dockerignore/doublestar
printf '%s\n%s' '!keep/[a-c]?.txt' 'keep/b1.txt' > corpus/dockerignore/negate
printf '%s\n%s' 'secret.env' './secret.env' > corpus/dockerignore/plain
python3 - <<'PY'
import io, tarfile
def tar(name, entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            t.addfile(e[0], io.BytesIO(e[1]) if len(e) > 1 else None)
    open(f"corpus/tar_unpack/{name}", "wb").write(b.getvalue())
def f(name, data=b"x", **kw):
    i = tarfile.TarInfo(name); i.size = len(data)
    for k, v in kw.items(): setattr(i, k, v)
    return (i, data)
def l(name, target, kind=tarfile.SYMTYPE):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target
    return (i,)
tar("plain", [f("a/b.txt"), f("c", mode=0o4755)])
tar("dotdot", [f("../escape"), f("/abs"), f("a/../../up")])
tar("symlink-out", [l("link", "../outside"), f("link/x"), l("abs", "/"), f("abs/etc/x")])
tar("hardlink-out", [l("h", "../outside/y", tarfile.LNKTYPE), f("ok")])
d = tarfile.TarInfo("dev"); d.type = tarfile.CHRTYPE; d.devmajor = 1; d.devminor = 3
tar("special", [(d,), l("fifo", "", tarfile.FIFOTYPE)])
PY
echo "seeded: $(find corpus -type f | wc -l) files"
