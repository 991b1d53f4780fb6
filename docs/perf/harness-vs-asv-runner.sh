#!/usr/bin/env bash
# What one paired sample of an asv micro-benchmark costs: benchvm's harness now, the harness
# before it imported suites as packages (03f230a), and asv's own runner (asv_runner), each as
# one fresh process, side by side in one hyperfine run (alternating is hyperfine's default
# order per command, so the three share the machine's state). Needs: hyperfine (Debian),
# python3, uv or pip.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-30}
id=${BENCH:-bench_text.time_tokenize}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check ./fixtures/project asv_runner
git show 03f230a:agent/src/layers/asv_harness.py >"$tmp/old_harness.py"
cp agent/src/layers/asv_harness.py "$tmp/new_harness.py"
# asv_runner imports the suite as a package and does not put the suite's folder on the
# path; the demo suite's `import _data` needs it there.
cp -r fixtures/project/benchmarks "$tmp/benchmarks"
py="$tmp/venv/bin/python"
cd "$tmp"
hyperfine -N --warmup 2 --runs "$runs" --export-json "$tmp/h.json" \
  -n "benchvm harness (now)" "$py $tmp/new_harness.py run $tmp/benchmarks $id" \
  -n "benchvm harness (03f230a)" "$py $tmp/old_harness.py run $tmp/benchmarks $id" \
  -n "asv_runner _run" "env PYTHONPATH=$tmp/benchmarks $py -c \"from asv_runner.run import _run; _run(['$tmp/benchmarks', '$id', '{}', 'None', '$tmp/result'])\"" \
  >/dev/null
python3 - "$tmp/h.json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
now = rs[0]["median"]
print("%-28s %10s %10s %10s %12s" % ("one sample via", "median ms", "mean ms", "user ms", "vs now"))
for r in rs:
    print("%-28s %10.1f %10.1f %10.1f %12.2f" % (r["command"], r["median"] * 1e3, r["mean"] * 1e3, r["user"] * 1e3, r["median"] / now))
PY
