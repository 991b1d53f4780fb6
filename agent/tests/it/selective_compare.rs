//! `selective: true` in a real comparison: real git, uv, Python and coverage.py, the project
//! installed non-editable (so the survey sees site-packages copies and maps them back).

use crate::support::{sh, write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PYPROJECT: &str = "[project]\nname = \"selpkg\"\nversion = \"0.1\"\n[project.scripts]\nselcli = \"selpkg.cli:main\"\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n";

const BENCH_YML: &str = "selective: true\nstartup:\n  - name: selcli\n    command: selcli\nmicro:\n  asv: benchmarks\nsampling:\n  min_rounds: 2\n  max_rounds: 2\n  timeout_s: 60\n";

/// main; `leaf` edits one function; `comment` only a comment; `build` the pyproject.
fn repo(dir: &Path) {
    write(dir, "pyproject.toml", PYPROJECT);
    write(dir, "bench.yml", BENCH_YML);
    write(dir, "src/selpkg/__init__.py", "");
    write(
        dir,
        "src/selpkg/alpha.py",
        "def a(n):\n    return sum(range(n))\n",
    );
    write(
        dir,
        "src/selpkg/beta.py",
        "def b(n):\n    return sorted(range(n, 0, -1))\n",
    );
    write(
        dir,
        "src/selpkg/gamma.py",
        "def c(n):\n    return [i * i for i in range(n)]\n",
    );
    write(
        dir,
        "src/selpkg/cli.py",
        "def main():\n    print('selcli')\n",
    );
    for (name, module, func) in [("a", "alpha", "a"), ("b", "beta", "b"), ("c", "gamma", "c")] {
        write(
            dir,
            &format!("benchmarks/bench_{name}.py"),
            &format!(
                "from selpkg.{module} import {func}\n\ndef time_{name}():\n    {func}(2000)\n"
            ),
        );
    }
    // A second benchmark in bench_a's module: the two are surveyed by one process.
    let path = dir.join("benchmarks/bench_a.py");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\nfrom selpkg.beta import b\n\ndef time_a2():\n    b(2000)\n"),
    )
    .unwrap();
    sh(
        dir,
        "git init -q -b main && git add -A && git commit -qm base",
    );
    sh(
        dir,
        "git checkout -qb leaf && sed -i 's/sum(range(n))/sum(range(n)) + 0/' src/selpkg/alpha.py && git commit -qam leaf && git checkout -q main",
    );
    sh(
        dir,
        "git checkout -qb comment && sed -i 's/^def b(n):$/def b(n):  # sorted descending input/' src/selpkg/beta.py && git commit -qam comment && git checkout -q main",
    );
    sh(
        dir,
        "git checkout -qb build && sed -i 's/version = \"0.1\"/version = \"0.1\"\\ndescription = \"changed\"/' pyproject.toml && git commit -qam build && git checkout -q main",
    );
}

fn compare(repo: &Path, cache: &Path, head: &str) -> (serde_json::Value, PathBuf, Output) {
    let results = cache.parent().unwrap().join(format!("results-{head}"));
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args(["compare", "--repo"])
        .arg(repo)
        .args(["--base", "main", "--head", head, "--results"])
        .arg(&results)
        .arg("--cache")
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{head}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(results.join("report.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), results, out)
}

fn measured(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["benchmark"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_selective_comparison_measures_only_what_the_diff_can_affect_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    repo(&repo_dir);
    let cache = tmp.path().join("cache");

    // One function edited: only its benchmark is measured.
    let (report, results, out) = compare(&repo_dir, &cache, "leaf");
    assert_eq!(measured(&report), ["micro/bench_a.time_a"], "{report:#}");
    let sel = &report["selection"];
    assert_eq!(sel["ran"], 1);
    assert_eq!(sel["skipped"].as_array().unwrap().len(), 4, "{sel:#}");
    let why = sel["ran_because"][0]["reason"].as_str().unwrap();
    assert!(why.contains("`a` of src/selpkg/alpha.py changed"), "{why}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("surveying base"),
        "the first run surveys"
    );
    // The survey is in the results, for SQL, with the installed copy mapped to src/.
    let db = rusqlite::Connection::open(results.join("selection.sqlite")).unwrap();
    let files: Vec<String> = db
        .prepare("SELECT DISTINCT file FROM dependencies ORDER BY file")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        files.contains(&"src/selpkg/alpha.py".to_owned()),
        "{files:?}"
    );
    assert!(
        files.iter().all(|f| !f.contains("site-packages")),
        "{files:?}"
    );
    // The startup command was surveyed through the console script, not given up on.
    let startup: Option<String> = db
        .query_row(
            "SELECT reason FROM benchmarks WHERE benchmark = 'startup/selcli'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(startup, None);
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap();
    assert!(summary.contains("1 of 5 benchmark(s) ran"), "{summary}");
    // Surveyed in one process, each benchmark of bench_a has its own coverage.
    let blocks = |id: &str| -> Vec<String> {
        db.prepare("SELECT file || ':' || block FROM dependencies WHERE benchmark = ?1 ORDER BY 1")
            .unwrap()
            .query_map([id], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let a = blocks("micro/bench_a.time_a");
    let a2 = blocks("micro/bench_a.time_a2");
    assert!(a.contains(&"src/selpkg/alpha.py:a".to_owned()), "{a:?}");
    assert!(!a.contains(&"src/selpkg/beta.py:b".to_owned()), "{a:?}");
    assert!(a2.contains(&"src/selpkg/beta.py:b".to_owned()), "{a2:?}");
    assert!(!a2.contains(&"src/selpkg/alpha.py:a".to_owned()), "{a2:?}");

    // A comment-only edit: nothing to measure, and that is "no change"; the survey of
    // the same base commit is reused.
    let (report, _, out) = compare(&repo_dir, &cache, "comment");
    assert_eq!(measured(&report), Vec::<String>::new());
    assert_eq!(report["summary"]["verdict"], "no_change");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reusing the survey"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A build file: everything runs, and the report says why.
    let (report, _, _) = compare(&repo_dir, &cache, "build");
    assert_eq!(measured(&report).len(), 5, "{report:#}");
    let why = report["selection"]["ran_because"][0]["reason"]
        .as_str()
        .unwrap();
    assert!(why.contains("build file pyproject.toml changed"), "{why}");
}
