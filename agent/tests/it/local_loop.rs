//! The local loop end to end with real git, Python and coverage.py: survey once, then
//! `impacted` after each edit runs only what the edit can affect, explains it, and keeps
//! the steps in SQLite.

use crate::support::{sh, write};
use std::path::Path;
use std::process::{Command, Output};

const ALPHA: &str = "def a(n):\n    return sum(range(n))\n";
const BETA: &str = "def b(n):\n    return sorted(range(n, 0, -1))\n\ndef c(n):\n    return [i * i for i in range(n)]\n";

fn project(dir: &Path) {
    write(dir, "pkg/__init__.py", "");
    write(dir, "pkg/alpha.py", ALPHA);
    write(dir, "pkg/beta.py", BETA);
    write(
        dir,
        "benchmarks/bench_a.py",
        "from pkg.alpha import a\n\ndef time_a():\n    a(1000)\n",
    );
    write(
        dir,
        "benchmarks/bench_b.py",
        "from pkg.beta import b\n\ndef time_b():\n    b(1000)\n",
    );
    write(
        dir,
        "benchmarks/bench_c.py",
        "from pkg.beta import c\n\ndef time_c():\n    c(1000)\n",
    );
    // A fourth module keeps pkg/beta.py (2 of 4) under the default hotfile share.
    write(dir, "pkg/delta.py", "def d(n):\n    return max(range(n))\n");
    write(
        dir,
        "benchmarks/bench_d.py",
        "from pkg.delta import d\n\ndef time_d():\n    d(1000)\n",
    );
    sh(
        dir,
        "git init -q -b main && git add -A && git commit -qm base",
    );
}

/// The agent on the checkout at `dir`, whatever its outcome.
fn run_agent(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args(args)
        .args(["--source-root", dir.to_str().unwrap()])
        // The project is not installed: its root is on the path instead.
        .env("PYTHONPATH", dir)
        .output()
        .unwrap()
}

/// The agent, 3 timed runs per benchmark, which must succeed.
fn agent(dir: &Path, args: &[&str]) -> Output {
    succeeded(run_agent(dir, &[args, &["--repeat", "3"]].concat()), args)
}

fn succeeded(out: Output, args: &[&str]) -> Output {
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ran(out: &Output) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut v: Vec<String> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ran"] == true)
        .map(|r| r["benchmark"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn survey_once_then_each_step_runs_only_what_the_edit_can_affect() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);

    let out = agent(dir, &["survey"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("surveyed 4 benchmark(s)"), "{text}");
    let out = agent(dir, &["survey"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kept the survey of"));

    // A comment-only edit selects nothing.
    write(
        dir,
        "pkg/beta.py",
        &BETA.replace("def c(n):", "def c(n):  # squares"),
    );
    let out = agent(dir, &["impacted", "--step-id", "comment", "--json"]);
    assert_eq!(ran(&out), Vec::<String>::new());

    // A one-function edit selects the one benchmark that runs it.
    write(dir, "pkg/beta.py", &BETA.replace("i * i", "i ** 2"));
    let out = agent(dir, &["impacted", "--step-id", "edit", "--explain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 of 4 benchmark(s) ran"), "{text}");
    // benchmark | baseline | current | delta, with a baseline for the one that ran.
    let row = text.lines().find(|l| l.contains("bench_c.time_c")).unwrap();
    let cells: Vec<&str> = row
        .trim_matches(|c| c == '│' || c == ' ')
        .split('┆')
        .map(str::trim)
        .collect();
    assert_eq!(cells.len(), 4, "{row}");
    assert!(cells[1].ends_with('s') && cells[2].ends_with('s'), "{row}");
    assert!(cells[3].ends_with('%'), "{row}");
    assert!(text.contains("baseline (median)"), "{text}");
    assert!(
        text.contains("bench_c.time_c: ran because `c` of pkg/beta.py changed"),
        "{text}"
    );
    assert!(
        text.contains("bench_b.time_b: skipped because none of the"),
        "{text}"
    );

    // Committed since the survey, it is still a change; a new module in pkg is one too.
    sh(dir, "git commit -qam edit");
    write(dir, "pkg/gamma.py", "X = 1\n");
    let out = agent(
        dir,
        &[
            "impacted",
            "--step-id",
            "later",
            "--json",
            "--from-git-diff",
        ],
    );
    assert_eq!(
        ran(&out),
        [
            "bench_a.time_a",
            "bench_b.time_b",
            "bench_c.time_c",
            "bench_d.time_d"
        ],
        "the untracked module sits in pkg, which all import"
    );

    // The steps, by plain SQL.
    let db = rusqlite::Connection::open(dir.join(".benchvm/selection.sqlite")).unwrap();
    let rows: Vec<(String, i64)> = db
        .prepare("SELECT step_id, sum(ran) FROM step_results GROUP BY step_id ORDER BY step_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("comment".to_owned(), 0),
            ("edit".to_owned(), 1),
            ("later".to_owned(), 4)
        ]
    );
    let delta: Option<f64> = db
        .query_row(
            "SELECT delta_percent FROM step_results WHERE step_id = 'edit' AND ran",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(delta.is_some_and(f64::is_finite), "{delta:?}");
}

#[test]
fn impacted_without_a_survey_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args(["impacted", "--source-root", tmp.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("run `benchvm-agent survey` first"),
        "{stderr}"
    );
}

/// Two benchmarks, x and y, that append their name to `log` (outside the checkout, so the
/// survey does not count it as a data file) on every call; one timed call per process.
fn logging_project(dir: &Path, log: &Path, sleep: &str) {
    for name in ["x", "y"] {
        write(
            dir,
            &format!("benchmarks/bench_{name}.py"),
            &format!(
                "import time\n\ndef time_{name}():\n    with open({log:?}, 'a') as f:\n        f.write('{name}')\n    time.sleep({sleep})\n\ntime_{name}.number = 1\ntime_{name}.repeat = 1\n"
            ),
        );
    }
    sh(
        dir,
        "git init -q -b main && git add -A && git commit -qm base",
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn rounds_interleave_the_benchmarks_and_every_sample_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, log) = (tmp.path().join("checkout"), tmp.path().join("log"));
    logging_project(&dir, &log, "0.001");

    let args = ["survey", "--rounds", "2", "--repeat", "2"];
    succeeded(run_agent(&dir, &args), &args);
    // One call each under coverage, then round by round: x twice, y twice, again.
    assert_eq!(read(&log), "xy".to_owned() + "xxyy" + "xxyy");
    let db = rusqlite::Connection::open(dir.join(".benchvm/selection.sqlite")).unwrap();
    let stored: Vec<(String, u32, u32)> = db
        .prepare("SELECT benchmark, repeat, number FROM baseline ORDER BY benchmark")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        stored,
        [
            ("bench_x.time_x".to_owned(), 4, 1),
            ("bench_y.time_y".to_owned(), 4, 1)
        ],
        "repeat is the number of samples: rounds × repeat"
    );

    // A step interleaves the same way.
    std::fs::write(&log, "").unwrap();
    for name in ["x", "y"] {
        let file = dir.join(format!("benchmarks/bench_{name}.py"));
        std::fs::write(&file, read(&file).replace("0.001", "0.002")).unwrap();
    }
    let args = ["impacted", "--rounds", "2", "--repeat", "1", "--json"];
    let out = succeeded(run_agent(&dir, &args), &args);
    assert_eq!(ran(&out), ["bench_x.time_x", "bench_y.time_y"]);
    assert_eq!(read(&log), "xyxy");
}

#[test]
fn warm_up_runs_the_benchmark_untimed_in_each_timed_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, log) = (tmp.path().join("checkout"), tmp.path().join("log"));
    logging_project(&dir, &log, "0.01");
    let calls = |name: char| read(&log).chars().filter(|&c| c == name).count();

    let args = ["survey", "--repeat", "1"];
    succeeded(run_agent(&dir, &args), &args);
    assert_eq!(calls('x'), 2, "one call under coverage, one timed");

    std::fs::write(&log, "").unwrap();
    let args = ["survey", "--force", "--repeat", "1", "--warmup-time", "0.2"];
    succeeded(run_agent(&dir, &args), &args);
    for name in ['x', 'y'] {
        assert!(
            calls(name) > 2,
            "0.2 s of 10 ms calls before the timed one: {}",
            read(&log)
        );
    }
}

#[test]
fn bad_rounds_and_warm_up_times_are_one_line_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for command in ["survey", "impacted"] {
        for (flags, named) in [
            (&["--rounds", "0"][..], "--rounds"),
            (&["--warmup-time", "-1"], "--warmup-time"),
            (&["--warmup-time=-0.5"], "--warmup-time"),
            (&["--warmup-time", "nan"], "--warmup-time"),
            (&["--warmup-time", "inf"], "--warmup-time"),
        ] {
            let out = run_agent(tmp.path(), &[&[command][..], flags].concat());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {flags:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{command} {flags:?}: {stderr}");
            assert!(stderr.contains(named), "{command} {flags:?}: {stderr}");
        }
    }
}

#[test]
fn a_benchmark_that_skips_itself_or_fails_is_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "pkg/__init__.py", "");
    write(dir, "pkg/alpha.py", ALPHA);
    write(
        dir,
        "benchmarks/bench_a.py",
        "from pkg.alpha import a\n\ndef time_a():\n    a(1000)\n",
    );
    write(
        dir,
        "benchmarks/bench_skip.py",
        "def setup():\n    raise NotImplementedError('needs a GPU')\n\ndef time_gpu():\n    pass\n",
    );
    sh(
        dir,
        "printf '.benchvm/\\n__pycache__/\\n' > .gitignore && git init -q -b main && git add -A && git commit -qm base",
    );
    agent(dir, &["survey"]);
    let db = rusqlite::Connection::open(dir.join(".benchvm/selection.sqlite")).unwrap();
    let timed: Vec<String> = db
        .prepare("SELECT benchmark FROM baseline ORDER BY benchmark")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(timed, ["bench_a.time_a"]);
    // An edit that makes time_a raise: the step completes and says so.
    write(
        dir,
        "pkg/alpha.py",
        "def a(n):\n    raise RuntimeError('broken')\n",
    );
    // It failed: exit 1, and the failure is its own field.
    let out = run_agent(
        dir,
        &["impacted", "--step-id", "broken", "--json", "--repeat", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["results"].as_array().unwrap();
    let a = rows
        .iter()
        .find(|r| r["benchmark"] == "bench_a.time_a")
        .unwrap();
    assert_eq!(a["ran"], true);
    assert!(a["median"].is_null(), "{a}");
    let why = a["reason"].as_str().unwrap();
    assert!(
        why.contains("not timed: it failed") && why.contains("RuntimeError: broken"),
        "{why}"
    );
    assert!(
        a["failure"]
            .as_str()
            .unwrap()
            .contains("RuntimeError: broken"),
        "{a}"
    );
    let text = run_agent(dir, &["impacted", "--step-id", "again", "--repeat", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("1 failed"), "{text}");
    let row = text.lines().find(|l| l.contains("bench_a.time_a")).unwrap();
    assert!(row.contains("failed"), "{row}");
    // The one that skips itself is always run (its survey failed) and says why it has no
    // timing.
    let skip = rows
        .iter()
        .find(|r| r["benchmark"] == "bench_skip.time_gpu")
        .unwrap();
    let why = skip["reason"].as_str().unwrap();
    assert!(why.contains("needs a GPU"), "{why}");
    assert!(skip["failure"].is_null(), "{skip}");

    // A benchmark module that no longer imports: its benchmark runs and fails, naming the
    // error, rather than passing for one removed from the suite.
    write(dir, "pkg/alpha.py", ALPHA);
    write(
        dir,
        "benchmarks/bench_a.py",
        "from pkg.alpha import gone\n\ndef time_a():\n    gone(1000)\n",
    );
    let out = run_agent(
        dir,
        &[
            "impacted",
            "--step-id",
            "unimportable",
            "--json",
            "--repeat",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["benchmark"] == "bench_a.time_a")
        .unwrap()
        .clone();
    assert_eq!(a["ran"], true, "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("its module bench_a cannot be imported: ImportError"),
        "{a}"
    );
    assert!(
        a["failure"].as_str().unwrap().contains("ImportError"),
        "{a}"
    );
}

/// The selection holds in what a user's checkout really looks like: surveyed with an
/// uncommitted edit that is reverted afterwards, a venv inside the checkout, a benchmark
/// added since the survey, paths given as `./…`.
#[test]
fn a_reverted_edit_a_venv_in_the_checkout_and_a_new_benchmark_are_all_handled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    // A venv in the checkout, not ignored by git, holding a module bench_d imports.
    sh(
        dir,
        "python3 -m venv --without-pip --system-site-packages venv",
    );
    let purelib = Command::new(dir.join("venv/bin/python"))
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let purelib = std::path::PathBuf::from(String::from_utf8(purelib.stdout).unwrap().trim());
    std::fs::create_dir_all(purelib.join("extra")).unwrap();
    std::fs::write(purelib.join("extra/__init__.py"), "X = 1\n").unwrap();
    write(
        dir,
        "benchmarks/bench_d.py",
        "import extra\nfrom pkg.delta import d\n\ndef time_d():\n    d(1000 + extra.X)\n",
    );
    sh(dir, "git add benchmarks && git commit -qm extra");
    // A relative --python is taken from the current directory, not the checkout.
    let python = dir.join("venv/bin/python");
    let venv = ["--python", python.to_str().unwrap()];

    // Surveyed with an uncommitted edit of `b`; reverting it is a change git cannot see.
    write(dir, "pkg/beta.py", &BETA.replace("n, 0, -1", "n, -1, -1"));
    let out = agent(dir, &[&["survey"][..], &venv].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 file(s) differ from"), "{err}");
    sh(dir, "git checkout -q pkg/beta.py");
    // New files in the venv (its site-packages is where `extra` was imported from) are
    // not the project's: they neither select nor shadow.
    std::fs::write(purelib.join("newmod.py"), "Y = 2\n").unwrap();
    let out = agent(dir, &[&["impacted", "--json"][..], &venv].concat());
    assert_eq!(ran(&out), ["bench_b.time_b"]);

    // A benchmark added since the survey runs: nothing is known of it. (Its file's
    // skeleton changed too, so its neighbour runs.)
    write(
        dir,
        "benchmarks/bench_a.py",
        "from pkg.alpha import a\n\ndef time_a():\n    a(1000)\n\ndef time_e():\n    a(10)\n",
    );
    let args = [
        "impacted",
        "--explain",
        "--changed-files",
        "./benchmarks/bench_a.py",
    ];
    let out = agent(dir, &[&args[..], &venv].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bench_a.time_e: ran because it is new since the survey"),
        "{text}"
    );
    assert!(text.contains("2 of 5 benchmark(s) ran"), "{text}");

    // A path outside the checkout is a usage error naming the flag.
    let out = run_agent(dir, &["impacted", "--changed-files", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--changed-files /etc/passwd"), "{err}");
}

/// A file that is not a database is a usage error naming --database; a project the
/// interpreter cannot import is one line that says what is missing and asks the question.
#[test]
fn a_corrupt_database_and_an_uninstalled_project_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("checkout");
    project(dir);
    let bad = tmp.path().join("bad.sqlite");
    std::fs::write(&bad, "not a database at all, just some text\n".repeat(100)).unwrap();
    let out = run_agent(dir, &["impacted", "--database", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--database") && stderr.contains("not a SQLite database"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // Without PYTHONPATH the checkout's `pkg` cannot be imported.
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args(["survey", "--source-root", dir.to_str().unwrap()])
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let last = stderr.trim().lines().last().unwrap();
    assert!(
        last.contains("No module named 'pkg'") && last.contains("is the project installed"),
        "{stderr}"
    );
    assert!(!stderr.contains("Traceback"), "{stderr}");
}
