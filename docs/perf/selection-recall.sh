#!/usr/bin/env bash
# Issue 3's proof of safety: the selection fixture (fixtures/selection/project) as a clean
# git checkout with a venv holding `dep` 1.0, then `benchvm-agent validate-selection` with
# the catalogue (fixtures/selection/catalogue.yml): each edit applied, the selection made,
# the whole suite run anyway, misses counted. Exit 1 if anything was missed.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm-agent
agent=$PWD/target/release/benchvm-agent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r fixtures/selection/project/. "$work"
cd "$work"
git init -q -b main && git add -A
git -c user.name=benchvm -c user.email=benchvm@localhost commit -qm fixture
python3 -m venv --system-site-packages .venv   # coverage.py comes from the system
python3 deps/make_wheels.py
.venv/bin/python -m pip install --quiet --no-index --find-links deps/dist dep==1.0
time PYTHONPATH=$work "$agent" validate-selection --catalogue "$OLDPWD/fixtures/selection/catalogue.yml" \
  --python .venv/bin/python --repeat 3
