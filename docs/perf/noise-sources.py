"""Where does the per-process noise of a micro-benchmark come from on this machine?

One benchmark of the vs-asv suite (SortedList.__contains__ over 200 probes of a 10,000-item
list, `time_contains(10000)`), timed in many processes under several conditions, the
conditions interleaved round by round so that machine-wide drift hits all of them alike:

  fresh     a new interpreter per sample (imports, setup, timing)
  pinned    the same, pinned to one CPU (taskset -c LAST)
  hashseed  the same, PYTHONHASHSEED=0
  noaslr    the same, address-space randomisation off (setarch -R)
  forked    one interpreter imports once and forks a child per sample (benchvm's sampler)
  forkpin   forked, the server pinned to one CPU (its children inherit it)
  resetup   one process per round, but a fresh setup (new objects) before every repeat:
            its "within a process" column is the spread between setups in one process

Each process calibrates `number` to about 10 ms once (outside the samples), then times
REPEATS repeats. Reported per condition: the spread between processes of the first repeat
and of the median of the later ones (standard deviation of ln(seconds), in %), and the
spread within a process (the median over processes of the sd of ln of its repeats).

Usage: python noise-sources.py SITE_PACKAGES_PYTHON [PROCESSES] [REPEATS]
  (the interpreter of a venv where sortedcontainers is installed)
"""
import json
import math
import os
import statistics
import subprocess
import sys

CHILD = r'''
import json, os, random, sys, time, timeit
def bench():
    from sortedcontainers import SortedList
    rnd = random.Random(10_000)
    values = [rnd.random() for _ in range(10_000)]
    sl = SortedList(values)
    probe = values[:200]
    def call():
        for v in probe:
            v in sl
    return call
def sample(number, repeats):
    call = bench()
    return [timeit.Timer(call).timeit(number) / number for _ in range(repeats)]
mode = sys.argv[1]
number, repeats = int(sys.argv[2]), int(sys.argv[3])
if mode == "once":
    print(json.dumps(sample(number, repeats)))
elif mode == "resetup":
    # One process, a fresh setup (new objects) for every repeat.
    print(json.dumps([sample(number, 1)[0] for _ in range(repeats)]))
else:
    # A server: import once, then fork one child per line read.
    import sortedcontainers  # noqa: F401
    for line in sys.stdin:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, json.dumps(sample(number, repeats)).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        print(data.decode(), flush=True)
'''


def main():
    python = sys.argv[1]
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    last_cpu = str(os.cpu_count() - 1)
    # number: calibrated once, to about 10 ms a repeat.
    one = json.loads(subprocess.check_output([python, "-c", CHILD, "once", "1", "3"]))
    number = max(1, int(0.01 / min(one)))
    fresh = {
        "fresh": ([python], {}),
        "pinned": (["taskset", "-c", last_cpu, python], {}),
        "hashseed": ([python], {"PYTHONHASHSEED": "0"}),
        "noaslr": (["setarch", "-R", python], {}),
        "malloc": ([python], {"PYTHONMALLOC": "malloc"}),
        "thp": ([python], {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}),
    }
    resetup = {"resetup": [python]}
    servers = {
        "forked": [python],
        "forkpin": ["taskset", "-c", last_cpu, python],
    }
    running = {
        name: subprocess.Popen(
            prefix + ["-c", CHILD, "serve", str(number), str(repeats)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, prefix in servers.items()
    }
    results = {name: [] for name in list(fresh) + list(resetup) + list(servers)}
    for i in range(processes):
        order = list(results)
        # Rotate the order each round: no condition always goes first.
        order = order[i % len(order):] + order[: i % len(order)]
        for name in order:
            if name in fresh:
                prefix, env = fresh[name]
                out = subprocess.check_output(
                    prefix + ["-c", CHILD, "once", str(number), str(repeats)],
                    env={**os.environ, **env},
                    timeout=120,
                )
                results[name].append(json.loads(out))
            elif name in resetup:
                out = subprocess.check_output(
                    resetup[name] + ["-c", CHILD, "resetup", str(number), str(repeats)],
                    timeout=120,
                )
                results[name].append(json.loads(out))
            else:
                server = running[name]
                server.stdin.write("go\n")
                server.stdin.flush()
                results[name].append(json.loads(server.stdout.readline()))
    for server in running.values():
        server.stdin.close()
        server.wait(timeout=60)

    def sd(xs):
        return 100 * statistics.stdev(math.log(x) for x in xs)

    print(f"time_contains(10000): {processes} processes per condition, {repeats} repeats of "
          f"number={number}, conditions interleaved")
    print("| condition | median µs | between processes, first repeat | between processes, "
          "median of later repeats | within a process |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        first = [r[0] for r in runs]
        later = [statistics.median(r[1:]) for r in runs]
        within = statistics.median(sd(r[1:]) for r in runs)
        print(f"| {name} | {statistics.median(later) * 1e6:.1f} | {sd(first):.1f} % | "
              f"{sd(later):.1f} % | {within:.1f} % |")
    # Drift: if the machine's speed wanders, conditions timed in the same round move together.
    names = [n for n in results if n != "resetup"]
    logs = {n: [math.log(statistics.median(r[1:])) for r in results[n]] for n in names}
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    corr = statistics.median(statistics.correlation(logs[a], logs[b]) for a, b in pairs)
    print(f"\nSame-round correlation between conditions (median over pairs): {corr:.2f}")


if __name__ == "__main__":
    main()
