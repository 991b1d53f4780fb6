//! `validate-selection --replay A..B` end to end with real git, Python and coverage.py: each
//! commit is selected against its parent's survey and checked against the commit's line
//! coverage and the benchmarks' outcomes, and a miss is reported and fails the run.

use crate::support::{sh, write};
use std::path::Path;
use std::process::Command;

fn project(dir: &Path) {
    write(dir, "pkg/__init__.py", "");
    write(
        dir,
        "pkg/alpha.py",
        "def a(n):\n    return sum(range(n))\n\ndef unused():\n    return 0\n",
    );
    write(
        dir,
        "pkg/beta.py",
        "def b(n):\n    return sorted(range(n, 0, -1))[0]\n\ndef c(n):\n    return [i * i for i in range(n)][-1]\n",
    );
    // Code generated from a template in a function body, as networkx's argmap does.
    write(
        dir,
        "pkg/gen.py",
        "def make():\n    src = 'def g(x):\\n    return x + 1\\n'\n    ns = {}\n    exec(compile(src, '<generated>', 'exec'), ns)\n    return ns['g']\n",
    );
    write(
        dir,
        "benchmarks/bench_a.py",
        "from pkg.alpha import a\n\ndef time_a():\n    return a(1000)\n",
    );
    write(
        dir,
        "benchmarks/bench_b.py",
        "from pkg.beta import b\n\ndef time_b():\n    return b(1000)\n",
    );
    write(
        dir,
        "benchmarks/bench_c.py",
        "from pkg.beta import c\n\ndef time_c():\n    return c(1000)\n",
    );
    write(
        dir,
        "benchmarks/bench_g.py",
        "from pkg.gen import make\n\ndef time_g():\n    return make()(1)\n",
    );
    // What no survey can see: git's idea of HEAD, read by a program that is not Python.
    write(
        dir,
        "benchmarks/bench_head.py",
        "import subprocess\n\ndef time_head():\n    return subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout\n",
    );
    sh(
        dir,
        "git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t commit -qm base && git tag base",
    );
}

fn commit(dir: &Path, file: &str, old: &str, new: &str, message: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(old).count(), 1, "{old} in {file}");
    std::fs::write(&path, text.replace(old, new)).unwrap();
    sh(
        dir,
        &format!("git -c user.name=t -c user.email=t@t commit -qam '{message}'"),
    );
}

fn names(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
        serde_json::Value::Object(o) => o.keys().cloned().collect(),
        _ => panic!("{v}"),
    };
    out.sort();
    out
}

#[test]
fn a_replay_checks_each_commit_s_selection_against_its_coverage_and_outcomes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    commit(dir, "pkg/beta.py", "[-1]", "[-2]", "c changes");
    commit(
        dir,
        "pkg/alpha.py",
        "return 0",
        "return 1",
        "unused changes",
    );
    commit(dir, "pkg/gen.py", "x + 1", "x + 2", "the template changes");
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args(["validate-selection", "--json", "--replay", "base..main"])
        .args(["--python", "python3", "--source-root"])
        .arg(dir)
        .env("PYTHONPATH", dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let commits = json["commits"].as_array().unwrap();
    let subjects: Vec<&str> = commits
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["c changes", "unused changes", "the template changes"]
    );
    // The body of c: its benchmark alone, and the truth agrees (its line ran, its
    // outcome moved).
    assert_eq!(names(&commits[0]["selected"]), ["bench_c.time_c"]);
    // The benchmark that reads HEAD through git is the one miss, on every commit.
    assert_eq!(
        names(&commits[0]["affected"]),
        ["bench_c.time_c", "bench_head.time_head"]
    );
    // A function no benchmark runs: nothing selected.
    assert_eq!(names(&commits[1]["selected"]), Vec::<String>::new());
    assert_eq!(names(&commits[1]["affected"]), ["bench_head.time_head"]);
    // The template of generated code: attributed to the function that compiles it.
    assert_eq!(names(&commits[2]["selected"]), ["bench_g.time_g"]);
    assert_eq!(
        names(&commits[2]["affected"]),
        ["bench_g.time_g", "bench_head.time_head"]
    );
    for c in commits {
        assert_eq!(c["total"], 5, "{c}");
        assert_eq!(c["untrusted"], 0, "{c}");
        assert_eq!(names(&c["missed"]), ["bench_head.time_head"], "{c}");
        assert!(
            c["affected"]["bench_head.time_head"]
                .as_str()
                .unwrap()
                .starts_with("outcome"),
            "{c}"
        );
    }
    assert_eq!(json["missed"], 3);
    assert_eq!(out.status.code(), Some(1), "a miss fails the run: {stderr}");
    // The checkout is back on its branch, clean.
    let head = Command::new("git")
        .args(["symbolic-ref", "--short", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), "main");
    let status = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "");
}

#[test]
fn a_replay_refuses_a_dirty_checkout_and_a_range_that_is_not_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let run = |range: &str| {
        Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
            .args(["validate-selection", "--replay", range])
            .args(["--python", "python3", "--source-root"])
            .arg(dir)
            .output()
            .unwrap()
    };
    for (range, says) in [
        ("base", "give a range A..B"),
        ("base..main", "no commits in range"),
        ("nosuch..main", "nosuch"),
    ] {
        let out = run(range);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{range}: {stderr}");
        assert!(stderr.contains(says), "{range}: {stderr}");
    }
    write(dir, "pkg/alpha.py", "edited = True\n");
    let out = run("base~0..main");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("commit or stash"), "{stderr}");
}
