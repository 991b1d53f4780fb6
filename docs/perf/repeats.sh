#!/usr/bin/env bash
# Whether timed repeats inside a sample buy anything (sampling.repeat): per-sample cost and
# A/A noise of the sortedcontainers suite of vs-asv.sh (27 asv time_* benchmarks, forked
# samples) with 5, 2 and 1 repeats per sample, A/A (main against the empty commit aa), a
# fixed number of rounds and seed, the settings alternated in one run (two passes) so they
# share the machine's state. Columns as in sample-server.sh: "A/A spread" is the median
# over benchmarks of the median absolute deviation of ln(head/base), in %; "A/A bias" the
# largest |median ln(head/base)| of any benchmark.
# Usage: docs/perf/repeats.sh   (ROUNDS=n, default 12; WORK=dir)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
rounds=${ROUNDS:-12}
WORK=${WORK:-/tmp/benchvm-repeats}
rm -rf "$WORK"
mkdir -p "$WORK"
(cd "$ROOT" && cargo build --release -q -p benchvm-agent)
agent=$ROOT/target/release/benchvm-agent
"$HERE/vs-asv/make-repo.sh" "$WORK/repo"
for repeat in 5 2 1; do
  printf 'micro:\n  asv: benchmarks\nsampling:\n  repeat: %s\nthresholds:\n  calibration: off\n' \
    "$repeat" > "$WORK/repeat-$repeat.yml"
done
for pass in 1 2; do
  for repeat in 5 2 1; do
    "$agent" compare --repo "$WORK/repo" --base main --head aa --config "$WORK/repeat-$repeat.yml" \
      --rounds "$rounds" --seed 7 --cache "$WORK/cache" --results "$WORK/results/$repeat-$pass" \
      2>"$WORK/$repeat-$pass.log" >/dev/null || { tail -5 "$WORK/$repeat-$pass.log"; exit 1; }
  done
done
python3 - "$WORK/results" <<'PY'
import json, math, pathlib, statistics, sys
root = pathlib.Path(sys.argv[1])
print("%-12s %6s %10s %12s %11s %9s %14s" % ("repeat-pass", "pairs", "measure s", "ms / sample", "A/A spread", "A/A bias", "verdicts"))
rows = {}
for run in sorted(root.iterdir(), key=lambda p: p.name):
    r = json.loads((run / "report.json").read_text())
    secs = next(s for s in r["spans"] if s["name"] == "measure")["duration_s"]
    pairs = len(r["samples"])
    spread, bias = [], []
    for c in r["comparisons"]:
        d = [math.log(p["head"]["value"] / p["base"]["value"]) for p in r["samples"]
             if p["benchmark"] == c["benchmark"] and p.get("base") and p.get("head")]
        mid = statistics.median(d)
        spread.append(100 * statistics.median(abs(x - mid) for x in d))
        bias.append(100 * abs(mid))
    verdicts = {}
    for c in r["comparisons"]:
        verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + 1
    per_sample = secs / (2 * pairs) * 1e3
    rows.setdefault(run.name.split("-")[0], []).append((per_sample, statistics.median(spread)))
    print("%-12s %6d %10.1f %12.1f %10.2f%% %8.2f%% %14s" % (
        run.name, pairs, secs, per_sample, statistics.median(spread), max(bias),
        " ".join("%s=%d" % kv for kv in sorted(verdicts.items()))))
base = statistics.median(x[0] for x in rows["5"])
for k in ("2", "1"):
    cost = statistics.median(x[0] for x in rows[k])
    print("repeat %s: %.2fx cheaper per sample than 5" % (k, base / cost))
PY
