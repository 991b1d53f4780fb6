"""The paired spread of two samples of the SAME function (an A/A pair, so every difference is
noise), by how the two samples share the machine. Each sample is a forked child, a fresh
process, as benchvm's sample server makes them; the parent tells each child when to time a
block of `number` calls, so the two can run one after the other (sequential: all of A's blocks,
then all of B's) or take turns (lockstep: A B A B ...; abba: A B B A A B ..., which also
balances which child goes first). Prints per design the sd of ln(A/B) over N pairs and its mean
(a bias between the two children).
Usage: [taskset -c 1] python3 docs/perf/lockstep.py SYNTH_REPO [N]   (scale.sh's repo; N=40)
"""
import math
import os
import statistics
import sys
import timeit

sys.path.insert(0, sys.argv[1])
from synth import funcs  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 40
DESIGNS = [("sequential", 100, 1), ("lockstep", 2, 50), ("abba", 2, 50), ("abba", 1, 100),
           ("abba", 5, 20)]


def child(number, blocks, go, done):
    f = funcs.f13
    for _ in range(5):
        f()
    times = []
    for _ in range(blocks):
        os.read(go, 1)
        times.append(timeit.Timer(f).timeit(number) / number)
        os.write(done, b".")
    os.write(done, (repr(sum(times)) + "\n").encode())
    os._exit(0)


def spawn(number, blocks):
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(done_r)
        child(number, blocks, go_r, done_w)
    os.close(go_r)
    os.close(done_w)
    return pid, go_w, done_r


def turn(child):
    os.write(child[1], b"g")
    os.read(child[2], 1)


def total(child):
    pid, go, done = child
    data = b""
    while not data.endswith(b"\n"):
        data += os.read(done, 4096)
    os.waitpid(pid, 0)
    os.close(go)
    os.close(done)
    return float(data.decode())


def pair(design, number, blocks):
    a, b = spawn(number, blocks), spawn(number, blocks)
    if design == "sequential":
        for c in (a, b):
            for _ in range(blocks):
                turn(c)
    else:
        for i in range(blocks):
            first, second = (b, a) if design == "abba" and i % 2 else (a, b)
            turn(first)
            turn(second)
    return math.log(total(a) / total(b))


ln = {d: [] for d in DESIGNS}
for _ in range(N):
    for d in DESIGNS:
        ln[d].append(pair(*d))
for (design, number, blocks), v in ln.items():
    print("%-10s number=%-3d blocks=%-3d: sd of ln(A/B) %.1f %%, mean %+.1f %%" % (
        design, number, blocks, 100 * statistics.stdev(v), 100 * statistics.mean(v)))
