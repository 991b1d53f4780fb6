"""The true effect of a branch on time_contains(10000), independent of both tools: in each of
30 fresh interpreters, base and head sortedcontainers are both loaded (under two names), a
SortedList of the same 10,000 values is built with each, and the benchmark's body is timed
on them in alternating blocks of 20 calls (60 blocks a side, the order flipped every block),
so both sides share the process and the moment; a process's ratio is head's total over
base's; the result is the median of the 30 ratios. (Separate processes per side, as before
2026-12-07, gave estimates ±10 % apart from run to run: a process's layout alone moves this
benchmark by about 20 %.)
Usage: truth.py BASE_DIR HEAD_DIR  (each a checkout of sortedcontainers)."""
import statistics
import subprocess
import sys

CODE = """
import importlib.util, random, sys, time

def load(name, root):
    spec = importlib.util.spec_from_file_location(
        name, root + "/sortedcontainers/__init__.py",
        submodule_search_locations=[root + "/sortedcontainers"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

rnd = random.Random(10000)
values = [rnd.random() for _ in range(10000)]
probe = values[:200]
lists = [load(name, root).SortedList(values) for name, root in (("base", sys.argv[1]), ("head", sys.argv[2]))]

def block(sl):
    t = time.perf_counter()
    for _ in range(20):
        for v in probe:
            v in sl
    return time.perf_counter() - t

block(lists[0]); block(lists[1])
total = [0.0, 0.0]
for k in range(120):
    side = (k + k // 2) % 2
    total[side] += block(lists[side])
print(total[1] / total[0])
"""
ratios = [
    float(
        subprocess.run(
            [sys.executable, "-c", CODE, sys.argv[1], sys.argv[2]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for _ in range(30)
]
print(f"{100 * (statistics.median(ratios) - 1):+.1f}")
