#!/usr/bin/env bash
# How a comparison's wall time grows with the suite, and whether a lone change is found in a
# large one: a synthetic package of cheap functions (an integer loop each) with an asv suite of
# N time_* benchmarks, one of which (f7) does 10 % more loop iterations on the head branch.
# For N = 30, 100, 300: `benchvm run --local` with the default sampling except a time budget
# large enough not to cut (3600 s) and no calibration (a one-time cost, measured apart by
# vs-asv.sh). Prints per N: wall time, rounds, pairs, f7's verdict, other flags.
# Usage: docs/perf/scale.sh [N...]   (default 30 100 300; WORK=dir)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/benchvm-scale}
SIZES=${*:-30 100 300}
rm -rf "$WORK"
mkdir -p "$WORK"
(cd "$ROOT" && cargo build --release -q -p benchvm)
BENCHVM=$ROOT/target/release/benchvm
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
for n in $SIZES; do
  repo=$WORK/synth-$n
  mkdir -p "$repo/synth" "$repo/benchmarks"
  python3 - "$repo" "$n" <<'PY'
import pathlib, sys
repo, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
(repo / "pyproject.toml").write_text(
    '[project]\nname = "synth"\nversion = "0"\n[build-system]\nrequires = ["setuptools"]\n'
    'build-backend = "setuptools.build_meta"\n[tool.setuptools]\npackages = ["synth"]\n')
(repo / "synth" / "__init__.py").write_text("")
funcs = ["def f%d(n=%d):\n    t = 0\n    for k in range(n):\n        t += k * %d\n    return t\n"
         % (i, 2000 + 10 * i, i + 1) for i in range(n)]
(repo / "synth" / "funcs.py").write_text("\n".join(funcs))
(repo / "benchmarks" / "__init__.py").write_text("")
per = 30
for m in range(0, n, per):
    body = "from synth import funcs\n\n" + "".join(
        "def time_f%d():\n    funcs.f%d()\n\n" % (i, i) for i in range(m, min(n, m + per)))
    (repo / "benchmarks" / ("bench_%03d.py" % m)).write_text(body)
(repo / "bench.yml").write_text(
    "micro:\n  asv: benchmarks\nsampling:\n  time_budget_s: 3600\nthresholds:\n  calibration: off\n")
PY
  git -C "$repo" init -q -b main
  git -C "$repo" add -A
  git -C "$repo" commit -qm synth
  git -C "$repo" checkout -q -b plant
  # f7 loops over 10 % more numbers.
  sed -i 's/^def f7(n=\([0-9]*\)):$/def f7(n=\1):\n    n += n \/\/ 10/' "$repo/synth/funcs.py"
  git -C "$repo" commit -qam "f7: +10 %"
  git -C "$repo" checkout -q main
  t0=$(date +%s.%N)
  "$BENCHVM" run --local --repo "$repo" --base main --head plant --cache "$WORK/cache" \
    --seed 11 --results "$WORK/out-$n" > /dev/null 2> "$WORK/run-$n.log" || true
  t1=$(date +%s.%N)
  python3 - "$WORK/out-$n/report.json" "$n" "$(python3 -c "print($t1 - $t0)")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, wall = int(sys.argv[2]), float(sys.argv[3])
f7 = next(c for c in r["comparisons"] if c["benchmark"].endswith(".time_f7"))
others = [c["benchmark"] for c in r["comparisons"]
          if c["verdict"] in ("regressed", "improved") and c is not f7]
ch = f7["change"]
counts = {}
for c in r["comparisons"]:
    counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
print("N=%d wall %.0f s, %d rounds, %d pairs; f7 %s %+.1f %% [%+.1f, %+.1f]; other flags %d; %s" % (
    n, wall, r["sampling"]["rounds"], len(r["samples"]), f7["verdict"], ch["estimate_percent"],
    ch["ci_low_percent"], ch["ci_high_percent"], len(others),
    " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
PY
done
