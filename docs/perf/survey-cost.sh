#!/usr/bin/env bash
# The survey's cost per benchmark against one timed run of it (issue 17, item 4), in one run.
#
# usage: docs/perf/survey-cost.sh AGENT ROOT SUITE PYTHON
#
# `benchvm-agent survey --repeat 1` surveys the suite a module at a time and then times every
# benchmark once in a fresh process; its progress lines are stamped as they arrive.
# - A module's survey cost is the time from its "surveying" line to the next line, shared
#   evenly by its benchmarks (they are surveyed by one process that forks a child per
#   benchmark). The last module's time also holds the survey's processing of every
#   benchmark's report (the fingerprints of the covered files), which comes before the first
#   "timing" line.
# - A benchmark's timed run is the time from its "timing" line to the next one. The last
#   benchmark's run ends where the database is written, so it is left out, and so are the
#   benchmarks the database holds no baseline for (they skipped themselves or failed when
#   timed): their short runs are not timed runs. The round's total holds them all, and the
#   database write.
set -euo pipefail
AGENT=$1 ROOT=$2 SUITE=$3 PY=$4
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$AGENT" survey --source-root "$ROOT" --suite "$SUITE" --python "$PY" \
    --database "$WORK/survey.sqlite" --repeat 1 2>&1 \
  | python3 -c '
import sys, time
for line in sys.stdin:
    print("%.6f %s" % (time.monotonic(), line.rstrip("\n")), flush=True)
print("%.6f" % time.monotonic())
' > "$WORK/stamped"
python3 - "$WORK/stamped" "$WORK/survey.sqlite" <<'PY'
import re, sqlite3, statistics, sys

stamped = [line.rstrip("\n").split(" ", 1) for line in open(sys.argv[1])]
stamps = [float(s[0]) for s in stamped]
lines = [s[1] if len(s) > 1 else "" for s in stamped[:-1]]
with sqlite3.connect(sys.argv[2]) as db:
    baselined = {row[0] for row in db.execute("SELECT benchmark FROM baseline")}
modules, timed, order = [], {}, []
for i, line in enumerate(lines):
    m = re.search(r"surveying (\d+) benchmark\(s\) of (\S+) \(", line)
    if m:
        modules.append((m.group(2), int(m.group(1)), stamps[i + 1] - stamps[i]))
    m = re.search(r": timing (.+) \(\d+/\d+\)$", line)
    if m:
        order.append(m.group(1))
        timed[m.group(1)] = stamps[i + 1] - stamps[i]
if not modules or not timed:
    sys.exit("no survey or timing progress seen; last line: %s" % (lines[-1] if lines else ""))
last = order[-1]
kept = {k: v for k, v in timed.items() if k != last and k in baselined}
names = sorted({name for name, _, _ in modules}, key=len, reverse=True)
def module_of(benchmark):
    return next((n for n in names if benchmark.startswith(n + ".")), None)

print("| module | benchmarks | survey s | per benchmark s | one timed run s (median) | ratio |")
print("|---|---|---|---|---|---|")
ratios = []
for name, n, spent in modules:
    runs = sorted(v for k, v in kept.items() if module_of(k) == name)
    per = spent / n
    if runs:
        ratios += [per / r for r in runs]
        run = statistics.median(runs)
        print("| %s | %d | %.1f | %.2f | %.2f | %.2f |" % (name, n, spent, per, run, per / run))
    else:
        print("| %s | %d | %.1f | %.2f | not timed | |" % (name, n, spent, per))
survey = sum(s for _, _, s in modules)
round_ = sum(timed.values())
ratios.sort()
print()
print("survey %.1f s for %d benchmarks, one timed round %.1f s for %d: ratio %.2f" % (
    survey, sum(n for _, n, _ in modules), round_, len(timed), survey / round_))
print("left out of the per-benchmark ratios: %d without a baseline, and the last one timed (%s)" % (
    len(set(timed) - baselined), last))
print("per benchmark (survey share / its timed run), %d benchmarks: median %.2f, 90th percentile %.2f, worst %.2f" % (
    len(ratios), statistics.median(ratios), ratios[int(0.9 * (len(ratios) - 1))], ratios[-1]))
PY
