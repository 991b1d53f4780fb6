#!/usr/bin/env bash
# Issue 3's wall-time acceptance: on the demo project (textkit, `benchvm fixture-repo`),
# `impacted` after a one-function edit against `impacted` made to run the whole suite (a
# changed build file selects everything), same --repeat, side by side in one hyperfine run.
# Needs uv and hyperfine (.ci/run installs both). Prints the selection, hyperfine's table and the medians' ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm -p benchvm-agent
bin=$PWD/target/release
runs=${RUNS:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin/benchvm" fixture-repo "$work/repo" >/dev/null
cd "$work/repo"
uv venv -q .venv
uv pip install -q --python .venv/bin/python -e . coverage
agent() { "$bin/benchvm-agent" "$@" --source-root . --python .venv/bin/python; }
agent survey 2>/dev/null

# The one-function edit: the body of similarity.jaccard (a leaf of the call graph).
python3 - <<'EOF'
import pathlib
p = pathlib.Path("src/textkit/similarity.py")
old = "    return len(a & b) / len(a | b)\n"
new = "    union = len(a | b)\n    return len(a & b) / union\n"
text = p.read_text()
assert text.count(old) == 1, "the edit's target moved"
p.write_text(text.replace(old, new))
EOF
git diff --stat
agent impacted --step-id selection --explain 2>/dev/null | grep -E "^step |ran because"

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/table.md" --export-json "$work/runs.json" \
  -n "impacted (one-function edit)" \
  "$bin/benchvm-agent impacted --source-root . --python .venv/bin/python --step-id edit" \
  -n "impacted (whole suite)" \
  "$bin/benchvm-agent impacted --source-root . --python .venv/bin/python --step-id all --changed-files pyproject.toml"
cat "$work/table.md"
python3 - "$work/runs.json" <<'EOF'
import json, sys
edit, full = json.load(open(sys.argv[1]))["results"]
print(f"medians: one-function edit {edit['median']:.3f} s, whole suite {full['median']:.3f} s, "
      f"ratio {edit['median'] / full['median']:.3f}")
EOF
