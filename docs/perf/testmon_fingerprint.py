"""Times pytest-testmon's own block fingerprinting on a list of Python files
(docs/perf/fingerprint.md): for each file, read it, `Module(source).method_checksums`
(ast parse, blocks, CRC32 per block) and its git blob SHA1, as testmon does when it
records a file. Median of REPEAT passes after one warm-up pass.

    python testmon_fingerprint.py LIST_FILE [REPEAT]
"""
import hashlib
import statistics
import sys
import time

from testmon.process_code import Module


def one_pass(files):
    blocks = 0
    for path in files:
        data = open(path, "rb").read()
        text = data.decode("utf-8", errors="replace")
        hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blocks += len(Module(source_code=text).method_checksums)
    return blocks


def main():
    files = open(sys.argv[1]).read().split("\n")
    files = [f for f in files if f]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    one_pass(files)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        blocks = one_pass(files)
        times.append(time.perf_counter() - t)
    print("testmon: %d files, median %.3f s of %d (min %.3f, max %.3f); %d blocks"
          % (len(files), statistics.median(times), repeat, min(times), max(times), blocks))


main()
