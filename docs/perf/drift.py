"""Does one process's speed drift in time? Times one cheap benchmark of the synthetic suite
(docs/perf/scale.sh) REPS times in a row in one process, GAP seconds apart, and prints the
spread of ln(time) and the correlation of each repeat with the next: spread with a high lag-1
correlation is drift of the machine over time, not noise of the process.
Usage: python3 docs/perf/drift.py SYNTH_REPO GAP REPS   (e.g. /tmp/benchvm-scale/synth-30 0 60)
"""
import math
import statistics
import sys
import time
import timeit

sys.path.insert(0, sys.argv[1])
from synth import funcs  # noqa: E402

gap, reps = float(sys.argv[2]), int(sys.argv[3])
f, number = funcs.f13, 100
for _ in range(20):
    f()
times = []
for _ in range(reps):
    times.append(timeit.Timer(f).timeit(number) / number)
    if gap:
        time.sleep(gap)
ln = [math.log(t) for t in times]
print("gap %.3f s: %d repeats, median %.1f us, sd of ln %.1f %%, lag-1 correlation %.2f" % (
    gap, reps, statistics.median(times) * 1e6, 100 * statistics.stdev(ln),
    statistics.correlation(ln[:-1], ln[1:])))
