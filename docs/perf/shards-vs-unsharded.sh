#!/usr/bin/env bash
# Issue 5's acceptance: a merged report of 3 shards gives the unsharded report's verdicts on
# the demo fixtures. Runs `benchvm demo` once whole and once per shard (same seed, one after
# the other on this machine), merges the shards with `benchvm merge`, checks both reports
# against fixtures/expected.json and prints the verdicts side by side. Results land in
# results/shards-<unix time>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm
bin=target/release/benchvm
out=$PWD/results/shards-$(date +%s)
mkdir -p "$out"
run() { # name, extra flags...
  local name=$1; shift
  local code=0
  /usr/bin/time -f "$name: %e s wall" "$bin" demo --seed 42 --markdown --results "$out/$name" "$@" >"$out/$name.md" || code=$?
  [ "$code" -le 1 ] || { echo "$name failed ($code)" >&2; exit 1; }
}
run unsharded
for i in 1 2 3; do run "shard-$i" --shard "$i/3"; done
"$bin" merge "$out"/shard-{1,2,3} --results "$out/merged" --markdown >"$out/merged.md"

python3 docs/perf/check_verdicts.py fixtures/expected.json "$out/unsharded/report.json" "$out/merged/report.json" | tee "$out/check.txt"
python3 - "$out/unsharded/report.json" "$out/merged/report.json" <<'PY' | tee "$out/verdicts.txt"
import json, sys
whole, merged = (json.load(open(p)) for p in sys.argv[1:3])
v = lambda r: {c["benchmark"]: (c["verdict"], (c.get("change") or {}).get("estimate_percent")) for c in r["comparisons"]}
a, b = v(whole), v(merged)
same = 0
print("%-52s %-14s %-14s" % ("benchmark", "unsharded", "merged"))
for k in sorted(set(a) | set(b)):
    x, y = a.get(k, ("missing", None)), b.get(k, ("missing", None))
    same += x[0] == y[0]
    fmt = lambda t: "%s %+.1f%%" % (t[0], t[1]) if t[1] is not None else t[0]
    print("%-52s %-22s %-22s%s" % (k, fmt(x), fmt(y), "" if x[0] == y[0] else "  <- differs"))
print("same verdict: %d of %d" % (same, len(set(a) | set(b))))
PY
