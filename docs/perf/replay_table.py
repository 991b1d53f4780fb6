"""Markdown tables from `benchvm-agent validate-selection --replay A..B --json` output.

usage: python3 docs/perf/replay_table.py replay.json [more.json ...]

Several files (a range replayed in parts) are read in the order given, as one history.
Prints one row per commit, then the share of the suite selected (median, worst), the
commits that selected everything and why, and the misses.
"""

import json
import statistics
import sys


def main(paths):
    commits = []
    for path in paths:
        with open(path) as f:
            commits.extend(json.load(f)["commits"])
    print("| commit | subject | selected | truly affected | missed | survey |")
    print("|---|---|---|---|---|---|")
    for c in commits:
        subject = c["subject"].replace("|", "\\|")[:60]
        print(
            "| %s | %s | %d of %d | %d | %d | %.0f s |"
            % (
                c["commit"][:9],
                subject,
                len(c["selected"]),
                c["total"],
                len(c["affected"]),
                len(c["missed"]),
                c["survey_seconds"],
            )
        )
    shares = [len(c["selected"]) / c["total"] for c in commits if c["total"]]
    missed = sum(len(c["missed"]) for c in commits)
    affected = sum(len(c["affected"]) for c in commits)
    print()
    print(
        "%d commits; selected share median %.1f %%, worst %.1f %%; %d of %d truly affected "
        "selected, %d missed; survey median %.0f s"
        % (
            len(commits),
            100 * statistics.median(shares),
            100 * max(shares),
            affected - missed,
            affected,
            missed,
            statistics.median(c["survey_seconds"] for c in commits),
        )
    )
    extra = [len(set(c["selected"]) - set(c["affected"])) for c in commits]
    print(
        "%d commits selected benchmarks the truth calls unaffected (%d selections in all)"
        % (sum(1 for e in extra if e), sum(extra))
    )
    for c in commits:
        if c["everything"]:
            print("- everything at %s (%s): %s" % (c["commit"][:9], c["subject"][:50], c["everything"]))
    for c in commits:
        for m in c["missed"]:
            print("- MISSED at %s: %s (%s)" % (c["commit"][:9], m, c["affected"][m]))


if __name__ == "__main__":
    main(sys.argv[1:])
