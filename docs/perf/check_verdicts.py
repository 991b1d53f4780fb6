#!/usr/bin/env python3
"""Checks benchvm reports against expected verdict classes.

    check_verdicts.py EXPECTED.json REPORT.json...    (demo: planted changes)
    check_verdicts.py --aa REPORT.json...             (A/A: nothing may be flagged)

EXPECTED maps layer -> benchmark name -> improved | regressed | unchanged | any.
"unchanged" accepts "no_change" and "inconclusive" (never regressed/improved). Prints one
table row per benchmark and report, and exits 1 on any violation or missing benchmark.
"""
import json
import sys

OK = {
    "improved": {"improved"},
    "regressed": {"regressed"},
    "unchanged": {"no_change", "inconclusive"},
    "any": {"improved", "regressed", "no_change", "inconclusive"},
}


def verdicts(path):
    report = json.load(open(path))
    out = {(c["layer"], c["name"]): (c["verdict"], c.get("change")) for c in report["comparisons"]}
    for d in report["dropped"]:
        bench = next(b for b in report["benchmarks"] if b["id"] == d["benchmark"])
        out[(bench["layer"], bench["name"])] = ("failed", None)
    return report, out


def main(argv):
    aa = argv[1] == "--aa"
    expected = None if aa else json.load(open(argv[1]))
    reports = argv[2:]
    bad = 0
    rows = {}
    for i, path in enumerate(reports):
        report, got = verdicts(path)
        print("# run %d: %s  rounds=%s seed=%s wall=%.0fs" % (
            i + 1, path, report["sampling"]["rounds"], report["seed"],
            sum(s["duration_s"] for s in report["spans"] if not s["name"].startswith("measure:"))))
        want = {k: "unchanged" for k in got} if aa else {
            (layer, name): cls for layer, names in expected.items() for name, cls in names.items()}
        for key, cls in sorted(want.items()):
            verdict, change = got.get(key, ("missing", None))
            ok = verdict in OK[cls]
            bad += not ok
            est = "%+.1f%% [%+.1f, %+.1f]" % (change["estimate_percent"], change["ci_low_percent"],
                                              change["ci_high_percent"]) if change else "-"
            rows.setdefault(key, []).append((verdict, est, ok))
    print("%-12s %-45s %-10s %s" % ("layer", "benchmark", "expected", "  |  ".join(
        "run %d" % (i + 1) for i in range(len(reports)))))
    for key, runs in sorted(rows.items()):
        cls = "unchanged" if aa else next(
            c for (l, n), c in ((k, v) for k, v in want.items()) if (l, n) == key)
        cells = "  |  ".join("%s%s %s" % ("" if ok else "!! ", v, e) for v, e, ok in runs)
        print("%-12s %-45s %-10s %s" % (key[0], key[1][:45], cls, cells))
    print("violations: %d" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
