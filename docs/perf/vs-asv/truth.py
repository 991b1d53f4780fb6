"""The true effect of a branch on time_contains(10000), independent of both tools: fresh
interpreters alternating between two checkouts, each timing the benchmark's body (best of
20 repeats of 100 calls); the ratio of the medians over 10 processes per side.
Usage: truth.py BASE_DIR HEAD_DIR  (each a checkout of sortedcontainers)."""
import os
import statistics
import subprocess
import sys

CODE = """
import random, timeit
from sortedcontainers import SortedList
rnd = random.Random(10000)
values = [rnd.random() for _ in range(10000)]
sl = SortedList(values)
probe = values[:200]
def body():
    for v in probe:
        v in sl
print(min(timeit.repeat(body, number=100, repeat=20)) / 100)
"""
times = {d: [] for d in sys.argv[1:3]}
for _ in range(10):
    for d in times:
        out = subprocess.run(
            [sys.executable, "-c", CODE],
            env={**os.environ, "PYTHONPATH": d},
            capture_output=True,
            text=True,
            check=True,
        )
        times[d].append(float(out.stdout))
base, head = (statistics.median(v) for v in times.values())
print(f"{100 * (head / base - 1):+.1f}")
