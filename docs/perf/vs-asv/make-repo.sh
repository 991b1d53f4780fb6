#!/usr/bin/env bash
# Makes the comparison repository at $1: sortedcontainers 2.4.0 as released on PyPI, the
# asv suite of vs-asv/benchmarks, asv.conf.json (environments under $1/../asv-*), a bench.yml
# with the suite alone, and the branches main, aa (an empty commit: A/A), plant5, plant15
# and speedup (vs-asv/branches.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$1
WORK=$(dirname "$REPO")
PY=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mkdir -p "$WORK/dl"
python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
  sortedcontainers==2.4.0 -d "$WORK/dl"
rm -rf "$REPO" "$WORK/sortedcontainers-2.4.0"
tar xzf "$WORK/dl/sortedcontainers-2.4.0.tar.gz" --no-same-owner -C "$WORK"
mv "$WORK/sortedcontainers-2.4.0" "$REPO"
cp -r "$HERE/benchmarks" "$REPO/benchmarks"
cat > "$REPO/asv.conf.json" <<JSON
{
  "version": 1,
  "project": "sortedcontainers",
  "project_url": "https://grantjenks.com/docs/sortedcontainers/",
  "repo": ".",
  "branches": ["main"],
  "environment_type": "virtualenv",
  "pythons": ["$PY"],
  "build_command": ["python -m pip wheel --no-deps -w {build_cache_dir} {build_dir}"],
  "benchmark_dir": "benchmarks",
  "env_dir": "$WORK/asv-env",
  "results_dir": "$WORK/asv-results",
  "html_dir": "$WORK/asv-html"
}
JSON
printf 'micro:\n  asv: benchmarks\n' > "$REPO/bench.yml"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
git -C "$REPO" init -q -b main
git -C "$REPO" add -A
git -C "$REPO" commit -qm "sortedcontainers 2.4.0"
git -C "$REPO" checkout -q -b aa
git -C "$REPO" commit -q --allow-empty -m "A/A"
git -C "$REPO" checkout -q main
python3 "$HERE/branches.py" "$REPO"
