//! A tiny real Python project in a git repository: `main`, and `perf/slow` where one
//! function is about four times slower.

use std::path::Path;
use std::process::Command;

const PYPROJECT: &str = r#"[project]
name = "tinybench"
version = "0.1"
[project.scripts]
tiny = "tinybench.cli:main"
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[tool.setuptools]
packages = ["tinybench"]
"#;

const CLI: &str = r#"import json, sys
from tinybench.work import loop

def main():
    if sys.argv[1:] == ["--version"]:
        print("tiny 0.1")
        return
    total = sum(loop(30_000) for _ in range(20))
    if "--out" in sys.argv:
        out = sys.argv[sys.argv.index("--out") + 1]
        import os
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump({"total": total, "label": "not a number"}, f)
"#;

const WORK_BASE: &str = "def loop(n):\n    return sum(range(n))\n";
const WORK_SLOW: &str = "def loop(n):\n    t = 0\n    for i in range(n):\n        t += i\n    for i in range(n):\n        t += 0\n    return t\n";

const SUITE: &str = r#"from tinybench.work import loop

def time_loop():
    loop(20_000)

def time_untouched():
    sorted(range(20_000, 0, -1))

def track_constant():
    return 7
track_constant.unit = "things"
"#;

/// The noise-floor calibration is off (it would double every test's measuring); the
/// calibration test turns it on.
pub const BENCH_YML: &str = r#"startup:
  - name: tiny --version
    command: tiny --version
importtime: tinybench.work
micro:
  asv: benchmarks
integration:
  - name: work
    command: tiny work --out build/q.json
    quality: build/q.json
memory:
  - name: work
    command: tiny work
sampling:
  min_rounds: 8
  max_rounds: 8
  timeout_s: 60
thresholds:
  calibration: off
"#;

pub fn sh(dir: &Path, script: &str) {
    let ok = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .status()
        .unwrap()
        .success();
    assert!(ok, "{script}");
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// main: the base project; perf/slow: loop() made 4x slower.
pub fn tiny_repo(dir: &Path) {
    for (rel, text) in [
        ("pyproject.toml", PYPROJECT),
        ("tinybench/__init__.py", ""),
        ("tinybench/cli.py", CLI),
        ("tinybench/work.py", WORK_BASE),
        ("benchmarks/bench_tiny.py", SUITE),
        ("bench.yml", BENCH_YML),
        (".gitignore", "build/\n"),
    ] {
        write(dir, rel, text);
    }
    sh(
        dir,
        "git init -q -b main && git add -A && git commit -qm base",
    );
    write(dir, "tinybench/work.py", WORK_SLOW);
    sh(
        dir,
        "git checkout -qb perf/slow && git commit -qam slower && git checkout -q main",
    );
}

/// `benchvm run --local --repo REPO --base BASE --head HEAD`, the start of every local
/// comparison a test makes, then `rest`.
pub fn local_run(repo: &Path, base: &str, head: &str, rest: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into(), "--local".into(), "--repo".into()];
    args.push(repo.display().to_string());
    args.extend(["--base", base, "--head", head].map(String::from));
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}
