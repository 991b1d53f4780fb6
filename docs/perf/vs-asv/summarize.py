"""Summarises docs/perf/vs-asv.sh's output directory (argv[1]) as markdown: wall time per
comparison, what each tool flagged, and benchvm's verdict counts."""
import json
import pathlib
import re
import statistics
import sys

OUT = pathlib.Path(sys.argv[1])
PLANTED = "time_contains("  # both sizes call SortedList.__contains__
TRUTH = "time_contains(10000)"  # the one truth.py measures

walls = {}
for line in (OUT / "walls.txt").read_text().splitlines():
    tool, tag, secs = line.split()
    walls[(tool, tag)] = float(secs)


def asv_flags(tag):
    """{benchmark: '+' or '-'} from asv continuous's comparison table."""
    flags = {}
    text = (OUT / f"asv-{tag}.txt").read_text(errors="replace")
    for line in text.splitlines():
        m = re.match(r"^\|?\s*([+-])\s+\|?.*?\s(\S+\(.*\)|\S+)\s*\|?\s*$", line)
        if m and "." in m.group(2):
            flags[m.group(2)] = m.group(1)
    return flags


def bvm(tag):
    report = json.loads((OUT / f"bvm-{tag}" / "report.json").read_text())
    flags = {}
    counts = {}
    for c in report["comparisons"]:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
        if c["verdict"] in ("regressed", "improved"):
            flags[c["benchmark"].split("/", 1)[1]] = "+" if c["verdict"] == "regressed" else "-"
    truth = next(c for c in report["comparisons"] if c["benchmark"].endswith(TRUTH))
    return flags, counts, truth


def describe(flags, expected):
    wrong = sorted(b for b, s in flags.items() if not (PLANTED in b and s == expected))
    return wrong


tags = sorted({t for _, t in walls if t[:3] in ("aa-", "p5-")}, key=lambda t: (t[:2], int(t.split("-")[1])))
print("| comparison | asv wall s | benchvm wall s | ratio | asv flagged | benchvm flagged | benchvm verdicts | benchvm on time_contains(10000) |")
print("|---|---|---|---|---|---|---|---|")
summary = {}
for tag in tags + ["plant15", "speedup"]:
    if ("asv", tag) not in walls or not (OUT / f"bvm-{tag}" / "report.json").exists():
        continue
    expected = {"aa": None, "p5": "+", "plant15": "+", "speedup": "-"}[tag.split("-")[0]]
    a = asv_flags(tag)
    b, counts, truth = bvm(tag)
    found = lambda flags: flags.get(next((k for k in flags if k.endswith(TRUTH)), ""), None) == expected
    ch = truth.get("change") or {}
    cell = f'{truth["verdict"]} {ch.get("estimate_percent", 0):+.1f} % [{ch.get("ci_low_percent", 0):+.1f}, {ch.get("ci_high_percent", 0):+.1f}]'
    wa, wb = walls[("asv", tag)], walls[("benchvm", tag)]
    print(
        f"| {tag} | {wa:.1f} | {wb:.1f} | {wb / wa:.2f} | "
        f"{'found' if expected and found(a) else ''} {len(describe(a, expected))} other | "
        f"{'found' if expected and found(b) else ''} {len(describe(b, expected))} other | "
        f"{', '.join(f'{v} {k}' for k, v in sorted(counts.items()))} | {cell} |"
    )
    kind = tag.split("-")[0]
    s = summary.setdefault(kind, {"asv": [], "bvm": [], "asv_found": 0, "bvm_found": 0, "asv_other": 0, "bvm_other": 0, "n": 0, "no_change": 0, "inconclusive": 0})
    s["asv"].append(wa)
    s["bvm"].append(wb)
    s["n"] += 1
    s["asv_found"] += bool(expected and found(a))
    s["bvm_found"] += bool(expected and found(b))
    s["asv_other"] += bool(describe(a, expected))
    s["bvm_other"] += bool(describe(b, expected))
    s["no_change"] += counts.get("no_change", 0)
    s["inconclusive"] += counts.get("inconclusive", 0)

print()
print("| kind | runs | median wall asv s | median wall benchvm s | ratio of medians | planted found: asv | benchvm | runs with another flag: asv | benchvm | benchvm rows no change / inconclusive |")
print("|---|---|---|---|---|---|---|---|---|---|")
for kind, s in summary.items():
    ma, mb = statistics.median(s["asv"]), statistics.median(s["bvm"])
    print(
        f"| {kind} | {s['n']} | {ma:.1f} | {mb:.1f} | {mb / ma:.2f} | {s['asv_found']} | {s['bvm_found']} | "
        f"{s['asv_other']} | {s['bvm_other']} | {s['no_change']} / {s['inconclusive']} |"
    )
for tool, tag in sorted(walls):
    if tag in ("warm", "calibrate"):
        print(f"\n{tool} {tag}: {walls[(tool, tag)]:.1f} s")
