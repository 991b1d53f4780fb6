#!/usr/bin/env bash
# benchvm against `asv continuous` (defaults) on a real pure-Python library from PyPI,
# sortedcontainers 2.4.0, with a 27-benchmark asv suite written for it (vs-asv/benchmarks),
# side by side on this machine: A/A (an empty commit), a planted +5 % and +15 % and a real
# speed-up of SortedList.__contains__ (vs-asv/branches.py; truth.py measures each effect
# independently of both tools). Each tool gets a warm start first (asv builds its
# environments; benchvm calibrates this host's noise floor, timed and reported apart).
# Then RUNS rounds; each runs the A/A and the +5 % with both tools, the tool order
# alternating by round; then the +15 % and the speed-up once each.
# Usage: docs/perf/vs-asv.sh [RUNS]    (default 10; WORK=dir keeps the work elsewhere)
set -euo pipefail
RUNS=${1:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/benchvm-vs-asv}
rm -rf "$WORK"
mkdir -p "$WORK/out" "$WORK/home"
(cd "$ROOT" && cargo build --release -q -p benchvm)
BENCHVM=$ROOT/target/release/benchvm

# asv and virtualenv (its environment type) in their own venv; asv's machine file under
# $WORK/home, not the user's.
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q --disable-pip-version-check asv==0.6.4 virtualenv
asv() { HOME=$WORK/home PATH=$WORK/tools/bin:$PATH "$WORK/tools/bin/asv" "$@"; }

# The library as released, in a git repository, with the suite, asv.conf.json, bench.yml,
# and the branches aa, plant5, plant15, speedup.
REPO=$WORK/repo
"$HERE/vs-asv/make-repo.sh" "$REPO"

# The truth, by neither tool.
for b in plant5 plant15 speedup; do
  rm -rf "$WORK/t-main" "$WORK/t-$b"
  git -C "$REPO" worktree add -q --detach "$WORK/t-main" main
  git -C "$REPO" worktree add -q --detach "$WORK/t-$b" "$b"
  echo "truth $b: time_contains(10000) $(python3 "$HERE/vs-asv/truth.py" "$WORK/t-main" "$WORK/t-$b") %"
  git -C "$REPO" worktree remove --force "$WORK/t-main"
  git -C "$REPO" worktree remove --force "$WORK/t-$b"
done | tee "$WORK/out/truth.txt"

now() { date +%s.%N; }
asv_run() { # base head tag
  local t0 t1
  t0=$(now)
  (cd "$REPO" && asv continuous "$1" "$2" > "$WORK/out/asv-$3.txt" 2>&1) || true
  t1=$(now)
  echo "asv $3 $(python3 -c "print(round($t1 - $t0, 1))")" >> "$WORK/out/walls.txt"
}
bvm_run() { # base head tag [extra flags]
  local t0 t1
  t0=$(now)
  "$BENCHVM" run --local --repo "$REPO" --base "$1" --head "$2" --cache "$WORK/cache" \
    --results "$WORK/out/bvm-$3" > /dev/null 2> "$WORK/out/bvm-$3.log" || true
  t1=$(now)
  echo "benchvm $3 $(python3 -c "print(round($t1 - $t0, 1))")" >> "$WORK/out/walls.txt"
}

# Warm starts: asv builds its environments; benchvm calibrates the host (timed apart).
(cd "$REPO" && asv machine --yes > /dev/null)
asv_run main plant5 warm
t0=$(now)
"$BENCHVM" calibrate --local --repo "$REPO" --base main --cache "$WORK/cache" \
  --results "$WORK/out/bvm-calibrate" > /dev/null 2> "$WORK/out/bvm-calibrate.log"
echo "benchvm calibrate $(python3 -c "print(round($(now) - $t0, 1))")" >> "$WORK/out/walls.txt"

for i in $(seq 1 "$RUNS"); do
  for pair in "aa:aa-$i" "plant5:p5-$i"; do
    head=${pair%%:*} tag=${pair#*:}
    if [ $((i % 2)) = 1 ]; then
      asv_run main "$head" "$tag"; bvm_run main "$head" "$tag"
    else
      bvm_run main "$head" "$tag"; asv_run main "$head" "$tag"
    fi
  done
  echo "round $i of $RUNS done" >&2
done
for head in plant15 speedup; do
  asv_run main "$head" "$head"
  bvm_run main "$head" "$head"
done

python3 "$HERE/vs-asv/summarize.py" "$WORK/out" | tee "$WORK/out/summary.md"
