#!/usr/bin/env bash
# Time and peak memory of `cairn compile` on the pathological inputs of issue 13 (run by
# hand, not in CI; bounds are read from the table, never asserted in tests). Appends a
# table to BENCHMARKS.md (or $BENCH_OUT).
#
#   bench/limits.sh                                  # target/debug/cairn
#   CAIRN_BIN=target/release/cairn bench/limits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CAIRN_BIN:-target/debug/cairn}
out=${BENCH_OUT:-BENCHMARKS.md}
[ -x /usr/bin/time ] || { echo "bench/limits.sh: needs /usr/bin/time" >&2; exit 1; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
python3 - "$d" <<'PY'
import sys
d = sys.argv[1]
def w(name, text): open(f"{d}/{name}", "w").write(text)
w("chain2000", "FROM scratch AS s0\n" + "".join(f"FROM s{i-1} AS s{i}\n" for i in range(1, 2000)))
nest = "x"
for i in range(19999, -1, -1):
    nest = "${a%d:-%s}" % (i, nest)
w("nest20000", "FROM scratch\nARG v=" + nest + "\n")
w("double30", "FROM scratch\nARG a0=ab\n" + "".join(f"ARG a{i}=${{a{i-1}}}${{a{i-1}}}\n" for i in range(1, 31)) + "RUN true\n")
w("env_run5000", "FROM scratch\n" + "".join(f"ENV V{i}={i}\nRUN echo {i}\n" for i in range(5000)))
w("env5000_run5000", "FROM scratch\n" + "".join(f"ENV V{i}={i}\n" for i in range(5000)) + "".join(f"RUN echo {i}\n" for i in range(5000)))
w("lines100000", "FROM scratch\n" + "".join(f"LABEL l{i}={i}\n" for i in range(100000)))
w("line10mb", "FROM scratch\nRUN echo " + "x" * (10 << 20) + "\n")
w("stages5000", "".join(f"FROM scratch AS s{i}\nLABEL n={i}\n" for i in range(5000)) + "FROM scratch\n" + "".join(f"COPY --from=s{i} / /\n" for i in range(0, 5000, 50)))
PY
{
    echo
    echo "## Hostile inputs, \`cairn compile\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $bin, load $(cut -d' ' -f1 /proc/loadavg))"
    echo
    echo "Made by \`bench/limits.sh\` (issue 13). rc 1 is a compile error naming the line (the limit)."
    echo
    echo "| input | rc | seconds | peak RSS (MB) |"
    echo "|---|---:|---:|---:|"
    for f in chain2000 nest20000 double30 env_run5000 env5000_run5000 lines100000 line10mb stages5000; do
        /usr/bin/time -f "%x %e %M" -o "$d/t" "$bin" compile -f "$d/$f" "$d" >/dev/null 2>&1 || true
        read -r rc secs kb < <(tail -1 "$d/t" | sed 's/^Command exited with non-zero status //; s/^Command terminated by signal /sig/')
        [ -n "${kb:-}" ] || { rc=$(tail -2 "$d/t" | head -1); read -r secs kb < <(tail -1 "$d/t" | cut -d' ' -f2-); }
        echo "| $f | $rc | $secs | $((kb / 1024)) |"
    done
} | tee -a "$out"
