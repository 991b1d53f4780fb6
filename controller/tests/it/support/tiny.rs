//! A tiny real Python project in a git repository: `main`, and `perf/slow` where one
//! function is about four times slower.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

pub use benchvm_agent::test_support::{sh, write};

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

/// Shared between tests and runs: uv's cache and the git mirrors, as on a real host.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("benchvm-cache")
}

/// `benchvm run --local --repo REPO --base BASE --head HEAD` and the flags a test adds: the
/// start of every local comparison the tests make.
#[derive(Debug, Clone)]
pub struct LocalRun {
    args: Vec<OsString>,
}

impl LocalRun {
    pub fn new(repo: &Path, base: &str, head: &str) -> LocalRun {
        let args = ["run", "--local", "--repo"]
            .map(OsString::from)
            .into_iter()
            .chain([repo.as_os_str().to_owned()])
            .chain(["--base", base, "--head", head].map(OsString::from))
            .collect();
        LocalRun { args }
    }

    /// `--name value`.
    pub fn flag(mut self, name: &str, value: impl AsRef<OsStr>) -> LocalRun {
        self.args.push(name.into());
        self.args.push(value.as_ref().to_owned());
        self
    }

    /// A flag without a value.
    pub fn switch(mut self, name: &str) -> LocalRun {
        self.args.push(name.into());
        self
    }

    /// `--cache` shared with the other tests ([`shared_cache`]).
    pub fn shared_cache(self) -> LocalRun {
        self.flag("--cache", shared_cache())
    }

    /// The command; a run without its own `--timeout-minutes` gets 20 (so that no test waits
    /// on a hung agent for the default three hours).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_benchvm"));
        command.args(&self.args);
        if !self.args.iter().any(|a| a == "--timeout-minutes") {
            command.args(["--timeout-minutes", "20"]);
        }
        command
    }

    pub fn output(&self) -> Output {
        self.command().output().expect("benchvm runs")
    }
}
