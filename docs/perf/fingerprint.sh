#!/usr/bin/env bash
# Issue 3's fingerprint budget: fingerprint a 2,000-file Python tree in under 2 s, measured
# side by side with pytest-testmon's own implementation, and the two candidate parsers
# (ruff's, tree-sitter-python) on the same files. The tree is the first 2,000 .py files
# (sorted by path) of the standard library of the python3 on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm-agent --example fingerprint_tree
venv=${TMPDIR:-/tmp}/benchvm-testmon-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pytest-testmon==2.2.0 coverage; }
list=${TMPDIR:-/tmp}/benchvm-tree2000.txt
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
find "$stdlib" -name '*.py' | LC_ALL=C sort | awk 'NR <= 2000' >"$list"
echo "tree: $(wc -l <"$list") files under $stdlib, $(cat "$list" | tr '\n' '\0' | xargs -0 cat | wc -c) bytes"
for mode in fingerprint ruff-parse tree-sitter-parse; do
  target/release/examples/fingerprint_tree "$list" "$mode" 5
done
"$venv/bin/python" docs/perf/testmon_fingerprint.py "$list" 5
