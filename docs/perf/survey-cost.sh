#!/bin/sh
# The survey's cost per benchmark against one timed run of it (issue 17, item 4), in one run.
#
# usage: docs/perf/survey-cost.sh AGENT ROOT SUITE PYTHON
#
# `benchvm-agent survey --repeat 1` surveys the suite a module at a time and then times every
# benchmark once in a fresh process; its progress lines are stamped as they arrive. A module's
# survey cost is the time from its "surveying" line to the next line, shared evenly by its
# benchmarks (they are surveyed in one process that forks a child per benchmark); a
# benchmark's timed run is the time from its "timing" line to the next one. The last module's
# time includes writing the survey's database.
set -eu
AGENT=$1 ROOT=$2 SUITE=$3 PY=$4
DB=$(mktemp -d)/survey.sqlite
trap 'rm -rf "$(dirname "$DB")"' EXIT
"$AGENT" survey --source-root "$ROOT" --suite "$SUITE" --python "$PY" --database "$DB" \
    --repeat 1 2>&1 | python3 -c '
import re, statistics, sys, time

lines = [(time.monotonic(), line.rstrip()) for line in sys.stdin]
end = time.monotonic()
stamps = [t for t, _ in lines] + [end]
modules, timed = [], {}
for i, (t, line) in enumerate(lines):
    m = re.search(r"surveying (\d+) benchmark\(s\) of (\S+) \(", line)
    if m:
        modules.append((m.group(2), int(m.group(1)), stamps[i + 1] - t))
    m = re.search(r": timing (.+) \(\d+/\d+\)$", line)
    if m:
        timed[m.group(1)] = stamps[i + 1] - t
if not modules or not timed:
    sys.exit("no survey or timing progress seen; last line: %s" % (lines[-1][1] if lines else ""))

print("| module | benchmarks | survey s | per benchmark s | one timed run s (median) | ratio |")
print("|---|---|---|---|---|---|")
ratios = []
for name, n, spent in modules:
    runs = sorted(v for k, v in timed.items() if k.startswith(name + "."))
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
print("per benchmark (survey share / its timed run): median %.2f, 90th percentile %.2f, worst %.2f" % (
    statistics.median(ratios), ratios[int(0.9 * (len(ratios) - 1))], ratios[-1]))
'
