#!/usr/bin/env bash
# The spine's acceptance, measured: three consecutive `benchvm demo` runs must call the
# planted speed-up improved, the planted regression regressed and nothing untouched
# regressed/improved; three A/A runs (main vs main) must flag nothing. Wall time per run
# is printed by `time`. Results land in results/acceptance-<unix time>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm
bin=target/release/benchvm
out=results/acceptance-$(date +%s)
mkdir -p "$out"
for i in 1 2 3; do
  echo "== demo run $i" >&2
  # Exit 1 is expected: the demo's bench.yml sets fail_on_regression and a regression is planted.
  code=0
  /usr/bin/time -f "demo run $i: %e s wall" "$bin" demo --markdown --results "$out/demo-$i" >/dev/null || code=$?
  [ "$code" -le 1 ] || { echo "demo run $i failed with exit code $code" >&2; exit 1; }
done
repo=${BENCHVM_CACHE:-$HOME/.cache/benchvm}/demo/textkit
for i in 1 2 3; do
  echo "== A/A run $i" >&2
  code=0
  /usr/bin/time -f "A/A run $i: %e s wall" "$bin" run --local --repo "$repo" --base main --head main \
    --markdown --results "$out/aa-$i" >/dev/null || code=$?
  [ "$code" -le 1 ] || { echo "A/A run $i failed with exit code $code" >&2; exit 1; }
done
python3 docs/perf/check_verdicts.py fixtures/expected.json "$out"/demo-*/report.json | tee "$out/demo-check.txt"
python3 docs/perf/check_verdicts.py --aa "$out"/aa-*/report.json | tee "$out/aa-check.txt"
