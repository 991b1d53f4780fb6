//! The local loop stopped by ^C or SIGTERM: exit 3, the benchmark in progress is killed
//! with the agent (it runs in its own process group, which a terminal's ^C does not reach),
//! and validate-selection puts the checkout back. Real git, Python and signals.

use crate::support::{sh, write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A benchmark whose setup, once `slow` exists in the checkout, writes its pid to
/// `pid.txt` and sleeps for a minute; `bulk` more committed files (empty, in `data/`) make
/// git's work on the checkout take long enough to be seen.
fn project(dir: &Path, bulk: usize) {
    write(dir, "pkg/__init__.py", "");
    write(dir, "pkg/work.py", "def f(n):\n    return sum(range(n))\n");
    write(
        dir,
        "benchmarks/bench_slow.py",
        "import os, time\nfrom pkg.work import f\n\nHERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n\n\
def setup():\n    if os.path.exists(os.path.join(HERE, 'slow')):\n        with open(os.path.join(HERE, 'pid.txt'), 'w') as fh:\n            fh.write(str(os.getpid()))\n        time.sleep(60)\n\n\
def time_f():\n    f(1000)\n",
    );
    if bulk > 0 {
        sh(
            dir,
            &format!("mkdir -p data && cd data && seq 1 {bulk} | xargs -n 1000 touch"),
        );
    }
    sh(
        dir,
        "printf '.benchvm/\\n__pycache__/\\npid.txt\\n' > .gitignore && git init -q -b main && git add -A && git commit -qm base",
    );
}

fn agent(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"));
    c.args(args)
        .args(["--repeat", "1", "--source-root"])
        .arg(dir)
        .env("PYTHONPATH", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The project in `tmp/checkout` and `validate-selection` of it with `catalogue` (YAML,
/// kept beside the checkout so as not to dirty it).
fn validate_selection(tmp: &Path, catalogue: &str, bulk: usize) -> (std::path::PathBuf, Command) {
    let dir = tmp.join("checkout");
    project(&dir, bulk);
    let file = tmp.join("edits.yml");
    std::fs::write(&file, catalogue).unwrap();
    let cmd = agent(
        &dir,
        &["validate-selection", "--catalogue", file.to_str().unwrap()],
    );
    (dir, cmd)
}

/// Waits (at most 30 s) for the benchmark to report its pid.
fn benchmark_pid(dir: &Path, agent: &mut Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(dir.join("pid.txt"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        if start.elapsed() > Duration::from_secs(30) || agent.try_wait().unwrap().is_some() {
            let _ = agent.kill();
            let out = agent.stderr.take().map(std::io::read_to_string);
            panic!("the slow benchmark never started: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and waits (at most 20 s) for the agent; returns its exit code and stderr.
fn terminate(mut agent: Child) -> (Option<i32>, String) {
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while agent.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = agent.kill();
            panic!("the agent did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = agent.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether a process is gone (or a zombie nobody has reaped yet), waiting at most 5 s.
fn gone(pid: i32) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if stat.is_empty() || state.starts_with('Z') {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn survey_and_impacted_stopped_by_sigterm_exit_3_and_take_the_benchmark_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, 0);
    let out = agent(dir, &["survey"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // impacted, while the selected benchmark is being timed.
    write(dir, "slow", "");
    write(
        dir,
        "pkg/work.py",
        "def f(n):\n    return sum(range(n + 1))\n",
    );
    // (One benchmark covers all the suite covers: everything is hot, so include it.)
    let slow = ["--changed-files", "pkg/work.py", "--hotfile-threshold", "1"];
    let mut child = agent(dir, &[&["impacted"][..], &slow].concat())
        .spawn()
        .unwrap();
    let pid = benchmark_pid(dir, &mut child);
    let (code, stderr) = terminate(child);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("stopping the run"), "{stderr}");
    assert!(gone(pid), "the benchmark {pid} outlived the agent");

    // survey --force, while the benchmark runs under coverage: the old survey stays.
    std::fs::remove_file(dir.join("pid.txt")).unwrap();
    let mut child = agent(dir, &["survey", "--force"]).spawn().unwrap();
    let pid = benchmark_pid(dir, &mut child);
    let (code, stderr) = terminate(child);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(gone(pid), "the benchmark {pid} outlived the agent");
    std::fs::remove_file(dir.join("slow")).unwrap();
    let out = agent(
        dir,
        &["impacted", "--changed-files", "pkg/work.py", "--json"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With 30,000 files in the checkout the `git reset` that puts it back takes long enough that
/// a stop which killed it (the agent's stop kills the process it last ran, every 50 ms for
/// 10 s, and git once ran through that runner) left the edit and a stale `index.lock`; the
/// small checkout's reset finished before the first kill.
#[test]
fn validate_selection_stopped_midway_puts_the_checkout_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, mut validate) = validate_selection(
        tmp.path(),
        "edits:\n  - name: slow down\n    steps:\n      - replace: {file: pkg/work.py, old: \"range(n)\", new: \"range(n + 1)\"}\n      - write: {file: slow, text: \"\"}\n",
        30_000,
    );
    let dir = &dir;
    let mut child = validate.args(["--timing-factor", "0"]).spawn().unwrap();
    let pid = benchmark_pid(dir, &mut child);
    let (code, stderr) = terminate(child);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(gone(pid), "the benchmark {pid} outlived the agent");
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "not put back");
    assert!(
        !dir.join(".git/index.lock").exists(),
        "git was killed while it held the index"
    );
}

#[test]
fn a_catalogue_edit_that_cannot_apply_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut validate) = validate_selection(
        tmp.path(),
        "edits:\n  - name: fine\n    steps:\n      - replace: {file: pkg/work.py, old: \"range(n)\", new: \"range(n + 1)\"}\n  - name: typo\n    steps:\n      - rename: {from: pkg/work.py, to: pkg/labour.py}\n      - replace: {file: pkg/work.py, old: \"range(n)\", new: \"range(2)\"}\n",
        0,
    );
    let out = validate.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // The second edit's replace looks for a file its own rename moved away.
    assert!(
        stderr.contains("edit \"typo\"") && stderr.contains("pkg/work.py: no such file"),
        "{stderr}"
    );
    assert!(!stderr.contains("surveying"), "work ran first: {stderr}");
}
