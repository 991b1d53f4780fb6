#!/usr/bin/env bash
# What a micro-benchmark sample costs with the per-side sample server (sampling.fork: true,
# the default: one interpreter per side imports the suite once and forks a child per sample)
# against a fresh interpreter per sample (fork: false), and whether the cheaper samples are
# any noisier. The demo's asv suite (12 benchmarks), A/A (base = head = the fixture's
# commit), a fixed number of rounds and seed, the two settings alternated ABAB in one run so
# they share the machine's state. "A/A spread" is the median over benchmarks of the median
# absolute deviation of ln(head/base), in %: the noise a verdict has to see through; "A/A
# bias" the largest |median ln(head/base)| of any benchmark: what a false flag is made of.
# Needs: python3, git; uv or pip.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-10}
cargo build -q -p benchvm-agent
agent=$PWD/target/debug/benchvm-agent
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

repo=$tmp/repo
cp -r fixtures/project "$repo"
git -C "$repo" init -q -b main
git -C "$repo" -c user.name=b -c user.email=b@example.invalid add -A
git -C "$repo" -c user.name=b -c user.email=b@example.invalid commit -qm fixture
for fork in true false; do
  cat >"$tmp/fork-$fork.yml" <<YML
micro:
  asv: benchmarks
sampling:
  warmups: 1
  fork: $fork
YML
done
for pass in 1 2; do
  for fork in true false; do
    "$agent" compare --repo "$repo" --base main --head main --config "$tmp/fork-$fork.yml" \
      --rounds "$rounds" --seed 7 --cache "$tmp/cache" --results "$tmp/results/$fork-$pass" \
      2>"$tmp/$fork-$pass.log" >/dev/null || { tail -5 "$tmp/$fork-$pass.log"; exit 1; }
  done
done
python3 - "$tmp/results" <<'PY'
import json, math, pathlib, statistics, sys
root = pathlib.Path(sys.argv[1])
print("%-18s %6s %10s %12s %11s %9s %14s" % ("run", "pairs", "measure s", "ms / sample", "A/A spread", "A/A bias", "verdicts"))
rows = {}
for run in sorted(root.iterdir()):
    r = json.loads((run / "report.json").read_text())
    measure = next(s for s in r["spans"] if s["name"] == "measure")
    secs = measure["duration_s"]
    pairs = len(r["samples"])
    # A/A noise: per benchmark the median absolute deviation of ln(head/base), in %.
    spread, bias = [], []
    for c in r["comparisons"]:
        d = [math.log(p["head"]["value"] / p["base"]["value"]) for p in r["samples"]
             if p["benchmark"] == c["benchmark"] and p.get("base") and p.get("head")
             and p["base"]["value"] > 0 and p["head"]["value"] > 0]
        if len(d) > 2:
            mid = statistics.median(d)
            spread.append(100 * statistics.median(abs(x - mid) for x in d))
            bias.append(100 * abs(mid))
    verdicts = {}
    for c in r["comparisons"]:
        verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + 1
    per_sample = secs / (2 * pairs) * 1e3
    rows.setdefault(run.name.split("-")[0], []).append(per_sample)
    print("%-18s %6d %10.1f %12.1f %10.2f%% %8.2f%% %14s" % (
        "fork: " + run.name, pairs, secs, per_sample, statistics.median(spread), max(bias),
        " ".join("%s=%d" % kv for kv in sorted(verdicts.items()))))
ratio = statistics.median(rows["false"]) / statistics.median(rows["true"])
print("fresh interpreter / forked child, per sample: %.2fx" % ratio)
PY
