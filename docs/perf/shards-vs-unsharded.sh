#!/usr/bin/env bash
# Issue 5's acceptance: a merged report of 3 shards gives the unsharded report's verdicts on
# the demo fixtures. One after the other on this machine, same seed: an unsharded demo, a
# second unsharded demo (the control: how much two whole runs differ), then 3 shards
# balanced by the first run's durations (--shard-weights), merged with `benchvm merge`.
# Checks every report against fixtures/expected.json and prints the verdicts side by side.
# Results land in results/shards-<unix time>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm
bin=target/release/benchvm
out=$PWD/results/shards-$(date +%s)
mkdir -p "$out"
ok() { [ "$1" -le 1 ] || { echo "$2 failed ($1)" >&2; exit 1; }; } # 1 = a regression found
run() { # name, extra flags...
  local name=$1; shift
  local code=0
  /usr/bin/time -f "$name: %e s wall" "$bin" demo --seed 42 --markdown --results "$out/$name" "$@" >"$out/$name.md" || code=$?
  ok "$code" "$name"
}
run unsharded
run control
for i in 1 2 3; do run "shard-$i" --shard "$i/3" --shard-weights "$out/unsharded/report.json"; done
code=0
"$bin" merge "$out"/shard-{1,2,3} --results "$out/merged" --markdown >"$out/merged.md" || code=$?
ok "$code" merge

python3 docs/perf/check_verdicts.py fixtures/expected.json "$out"/{unsharded,control,merged}/report.json | tee "$out/check.txt" || true
python3 - "$out"/{unsharded,control,merged}/report.json <<'PY' | tee "$out/verdicts.txt"
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:4]]
v = lambda r: {c["benchmark"]: c["verdict"] for c in r["comparisons"]}
whole, control, merged = map(v, runs)
keys = sorted(set(whole) | set(control) | set(merged))
print("%-48s %-13s %-13s %-13s" % ("benchmark", "unsharded", "control", "merged"))
for k in keys:
    row = [d.get(k, "missing") for d in (whole, control, merged)]
    print("%-48s %-13s %-13s %-13s" % (k, *row))
same = lambda a, b: sum(a.get(k) == b.get(k) for k in keys)
print("same verdict, unsharded vs merged:  %d of %d" % (same(whole, merged), len(keys)))
print("same verdict, unsharded vs control: %d of %d" % (same(whole, control), len(keys)))
PY
