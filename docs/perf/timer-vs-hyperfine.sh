#!/usr/bin/env bash
# Does benchvm-agent's process timer agree with hyperfine's? Both time the same trivial
# commands without a shell, side by side in one session, alternating A B A B … so that
# machine drift hits both. Prints one line per command and round, then the medians of the
# per-round medians and their ratio. Needs: hyperfine (Debian package), python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm-agent
agent=target/release/benchvm-agent
runs=${RUNS:-60}
rounds=${ROUNDS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

commands=("true" "python3 -S -c pass" "python3 -c pass")
printf '%-22s %5s %14s %14s %8s\n' command round hyperfine_ms benchvm_ms ratio
for cmd in "${commands[@]}"; do
  read -r -a argv <<<"$cmd"
  : >"$tmp/h" ; : >"$tmp/b"
  for r in $(seq 1 "$rounds"); do
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$tmp/h.json" -- "$cmd" >/dev/null 2>&1
    h=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$tmp/h.json")
    b=$("$agent" time --warmup 3 --runs "$runs" -- "${argv[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_s"])')
    echo "$h" >>"$tmp/h"; echo "$b" >>"$tmp/b"
    python3 -c 'import sys; h,b=map(float,sys.argv[1:]); print("%-22s %5d %14.3f %14.3f %8.3f" % (sys.argv[0] if False else "'"$cmd"'", '"$r"', h*1e3, b*1e3, b/h))' "$h" "$b"
  done
  python3 - "$tmp/h" "$tmp/b" "$cmd" <<'PY'
import statistics, sys
h = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
mh, mb = statistics.median(h), statistics.median(b)
print("%-22s %5s %14.3f %14.3f %8.3f   <- median of %d rounds" % (sys.argv[3], "all", mh * 1e3, mb * 1e3, mb / mh, len(h)))
PY
done
