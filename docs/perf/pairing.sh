#!/usr/bin/env bash
# What `sampling.pin_cpu` and `sampling.lockstep` buy: the synthetic 30-benchmark suite of
# scale.sh (f7 +10 % on head), run in three ways, interleaved, R times each: `free` (neither),
# `pinned` (pin_cpu only) and `lockstep` (both, the default). Prints per run: wall time,
# rounds, the median over benchmarks of the sd of ln(head/base) across pairs (the paired
# spread that decides how many rounds a verdict needs), f7's verdict and the verdict counts.
# Usage: docs/perf/pairing.sh [R] [MODES]   (default 2 "free pinned lockstep"; WORK=dir)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/benchvm-pairing}
R=${1:-2}
MODES=${2:-free pinned lockstep}
WORK=$WORK "$HERE/scale.sh" 30 > /dev/null
BENCHVM=$ROOT/target/release/benchvm
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
variant() { # name, then the sampling lines it adds to bench.yml on both branches
  local repo=$WORK/synth-30-$1
  git clone -q "$WORK/synth-30" "$repo"
  for branch in main plant; do
    git -C "$repo" checkout -q -B "$branch" "origin/$branch"
    sed -i "s/^sampling:\$/sampling:\n$2/" "$repo/bench.yml"
    git -C "$repo" commit -qam "$1"
  done
}
variant free '  pin_cpu: false\n  lockstep: false'
variant pinned '  lockstep: false'
variant lockstep '  lockstep: true'
for i in $(seq "$R"); do
  for mode in $MODES; do
    repo=$WORK/synth-30-$mode
    out=$WORK/out-$mode-$i
    t0=$(date +%s.%N)
    "$BENCHVM" run --local --repo "$repo" --base main --head plant --cache "$WORK/cache" \
      --seed 11 --results "$out" > /dev/null 2> "$WORK/run-$mode-$i.log" || true
    t1=$(date +%s.%N)
    python3 - "$out/report.json" "$mode" "$(python3 -c "print($t1 - $t0)")" <<'PY'
import json, math, statistics, sys
from collections import defaultdict
r = json.load(open(sys.argv[1]))
ln = defaultdict(list)
for s in r["samples"]:
    if s.get("base") and s.get("head"):
        ln[s["benchmark"]].append(math.log(s["head"]["value"] / s["base"]["value"]))
sd = statistics.median(100 * statistics.stdev(v) for v in ln.values() if len(v) > 1)
f7 = next(c for c in r["comparisons"] if c["benchmark"].endswith(".time_f7"))
ch = f7["change"]
counts = defaultdict(int)
for c in r["comparisons"]:
    counts[c["verdict"]] += 1
print("%-8s wall %.0f s, %d rounds, %d pairs, paired sd %.1f %%; f7 %s %+.1f %% [%+.1f, %+.1f]; %s" % (
    sys.argv[2], float(sys.argv[3]), r["sampling"]["rounds"], len(r["samples"]), sd, f7["verdict"],
    ch["estimate_percent"], ch["ci_low_percent"], ch["ci_high_percent"],
    " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
PY
  done
done
