//! A pull request's head that attacks the host it is benchmarked on, at install time (its
//! build backend: setup.py) and at run time (a benchmark): each write that would persist
//! or poison a later run, and each read of an ancestor's secrets, is refused; the run itself
//! completes and reports the attacks' outcome as a benchmark value.
//!
//! Every probe is harmless if it succeeds (an append of nothing, a new empty file with a
//! name of its own in a directory this test owns), so a broken confinement fails the test
//! without damaging anything.

use std::path::Path;

use serde_json::Value;

use crate::support::procs;
use crate::support::tiny::{LocalRun, sh, tiny_repo, write};

/// The attacks, as Python run by setup.py (stage `install`) and by the benchmark (stage
/// `bench`). Prints nothing; returns the list of attacks that succeeded, after two
/// controls that must succeed (writes to TMPDIR and to the checkout).
const ATTACKS: &str = r#"
import os, time

def _ancestors():
    pid = os.getppid()
    while pid > 1:
        yield pid
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])

def _create(directory, stage):
    # Unique: the build backend and the benchmark run more than once.
    name = f"planted-by-{stage}-{os.getpid()}-{time.monotonic_ns()}"
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)

def _linked_file(directory):
    # A file with a second name elsewhere (uv links venvs to its cache by default):
    # writing it through the venv would write the cache.
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if os.lstat(path).st_nlink > 1:
                _append_nothing(path)
                return
    raise FileNotFoundError(directory)

def _same_mode(path):
    # A chmod that changes nothing still needs the right to change the mode: refused on a
    # read-only mount. (`chmod 777 ~/.ssh` would make sshd refuse the next login.)
    os.chmod(path, os.stat(path).st_mode & 0o7777)

def _append_nothing(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.close(fd)

def attack(stage, agent_dir, checkout):
    venv = os.environ["VIRTUAL_ENV"]
    work = os.path.dirname(venv)
    with open(os.path.join(checkout, ".git")) as f:
        worktree_admin = f.read().split("gitdir:", 1)[1].strip()
    mirror = os.path.dirname(os.path.dirname(worktree_admin))
    other = "base-venv" if venv.endswith("head-venv") else "head-venv"
    attempts = {
        "authorized_keys": lambda: _append_nothing(
            os.path.expanduser("~/.ssh/authorized_keys")),
        "home": lambda: _create(os.path.expanduser("~"), stage),
        "chmod of the home": lambda: _same_mode(os.path.expanduser("~")),
        "chmod of ~/.ssh": lambda: _same_mode(os.path.expanduser("~/.ssh")),
        "chmod of authorized_keys": lambda: _same_mode(
            os.path.expanduser("~/.ssh/authorized_keys")),
        "chmod of the mirror": lambda: _same_mode(mirror),
        "chmod of the cache": lambda: _same_mode(os.path.dirname(os.path.dirname(work))),
        "mirror objects": lambda: _create(os.path.join(mirror, "objects"), stage),
        "other side's venv": lambda: _create(os.path.join(work, other), stage),
        "agent directory": lambda: _create(agent_dir, stage),
        "cache": lambda: _create(os.path.dirname(os.path.dirname(work)), stage),
    }
    if venv.endswith("head-venv"):
        # The head installs with a uv cache of its own; the base side's is not its to write
        # (nor another head's: those are its siblings).
        heads = os.path.dirname(os.environ["UV_CACHE_DIR"])
        attempts["the base side's uv cache"] = lambda: _create(
            os.path.join(os.path.dirname(heads), "uv"), stage)
        attempts["another head's uv cache"] = lambda: _create(heads, stage)
    if stage == "bench":
        # The install may write uv's cache (a residual risk the docs name); what runs
        # afterwards may not.
        attempts["uv cache"] = lambda: _create(os.environ["UV_CACHE_DIR"], stage)
        attempts["uv cache through the venv"] = lambda: _linked_file(venv)
    succeeded = []
    for name, attempt in attempts.items():
        try:
            attempt()
            succeeded.append(name)
        except OSError:
            pass
    for pid in _ancestors():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"planted-secret-value" in f.read():
                    succeeded.append(f"environ of {pid}")
        except OSError:
            pass
    # A file in /dev/shm (allowed: multiprocessing's semaphores live there) must go with
    # the run; its name carries the test's directory, the parent of the home.
    test_dir = os.path.basename(os.path.dirname(os.path.expanduser("~")))
    _create("/dev/shm", f"{stage}-{test_dir}")
    # The controls: a side writes its TMPDIR and its checkout.
    _create(os.environ["TMPDIR"], stage)
    _create(checkout, stage)
    return succeeded
"#;

/// setup.py of the attacking head: the attacks at build time, their outcome kept in the
/// checkout for the benchmark to report.
fn setup_py(agent_dir: &Path) -> String {
    format!(
        r#"import json, os
from setuptools import setup
{ATTACKS}
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "install-attacks.json"), "w") as f:
    json.dump(attack("install", {agent_dir:?}, here), f)
setup()
"#,
        agent_dir = agent_dir.display().to_string()
    )
}

/// The benchmark: the number of attacks that succeeded at install and at run time; -1 when
/// the install's record is missing (its attacks did not run).
fn suite(agent_dir: &Path) -> String {
    format!(
        r#"import json, os
from tinybench.work import loop
{ATTACKS}

def time_loop():
    loop(20_000)

def track_attacks():
    try:
        with open("install-attacks.json") as f:
            at_install = json.load(f)
    except OSError:
        return -1
    at_run = attack("bench", {agent_dir:?}, os.getcwd())
    if at_install or at_run:
        raise RuntimeError(f"attacks succeeded: {{at_install + at_run}}")
    return 0
track_attacks.unit = "attacks"
"#,
        agent_dir = agent_dir.display().to_string()
    )
}

#[test]
fn a_head_that_attacks_the_host_is_refused_every_write_and_every_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    tiny_repo(&repo);
    let agent = Path::new(env!("CARGO_BIN_EXE_benchvm"));
    let agent_dir = agent.parent().unwrap();
    // Both sides attack (so the benchmark is compared); the head is one more commit.
    write(&repo, "setup.py", &setup_py(agent_dir));
    write(&repo, "benchmarks/bench_tiny.py", &suite(agent_dir));
    sh(&repo, "git add -A && git commit -qm attack");
    write(&repo, "README", "the head\n");
    sh(
        &repo,
        "git checkout -qb perf/attack && git add -A && git commit -qm head && git checkout -q main",
    );
    let home = tmp.path().join("home");
    let keys = home.join(".ssh/authorized_keys");
    write(
        &home,
        ".ssh/authorized_keys",
        "ssh-ed25519 AAAA the-owner\n",
    );
    let cache = tmp.path().join("cache");
    let results = tmp.path().join("results");
    let out = LocalRun::new(&repo, "main", "perf/attack")
        .flag("--results", &results)
        .flag("--cache", &cache)
        .command()
        .env("HOME", &home)
        // A credential of the job: the controller holds it, the agent is started without
        // it; the benchmarks' reads of their ancestors' environments must be refused.
        .env("AZURE_CLIENT_SECRET", "planted-secret-value")
        .output()
        .expect("benchvm runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: String = ["base", "head"]
        .map(|side| {
            std::fs::read_to_string(results.join(format!("logs/install-{side}.log")))
                .unwrap_or_default()
        })
        .concat();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the run completes: {stderr}\n{logs}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    let attacks = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["benchmark"] == "micro/bench_tiny.track_attacks")
        .unwrap_or_else(|| panic!("the attacks ran on every round and were reported: {report}"));
    assert_eq!(attacks["head_median"], 0.0, "{attacks}");
    assert_eq!(attacks["void_pairs"], 0, "{attacks}");
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        "ssh-ed25519 AAAA the-owner\n"
    );
    // The run's own directory (its checkouts and TMPDIRs hold the controls) is gone.
    let planted: Vec<String> = walk(tmp.path())
        .into_iter()
        .chain(["install", "bench"].map(|stage| {
            agent_dir
                .join(format!("planted-by-{stage}"))
                .display()
                .to_string()
        }))
        .filter(|p| p.contains("planted-by-") && Path::new(p).exists())
        .collect();
    assert!(planted.is_empty(), "planted: {planted:?}");
    // What the sides left in their /dev/shm went with them.
    let test_dir = tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let in_shm: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(&test_dir))
        .collect();
    for name in &in_shm {
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(name));
    }
    assert!(in_shm.is_empty(), "left in the host's /dev/shm: {in_shm:?}");
}

/// Every path beneath `dir` (not following symlinks).
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        out.push(path.display().to_string());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        }
    }
    out
}

/// The head's bench.yml, for both sides: its integration run leaves a FIFO where its quality
/// file should be, and two benchmarks fail after growing their stderr to a sparse terabyte
/// (whose end is zeros: no line to show).
const TRAPS_YML: &str = r#"micro:
  asv: benchmarks
integration:
  - name: trap
    command: python -c "import os; os.makedirs('build', exist_ok=True); os.path.exists('build/q.json') or os.mkfifo('build/q.json')"
    quality: build/q.json
sampling:
  min_rounds: 2
  max_rounds: 2
  timeout_s: 60
thresholds:
  calibration: off
"#;

const TRAPS_SUITE: &str = r#"import os
from tinybench.work import loop

def time_loop():
    loop(20_000)

def time_sparse_stderr():
    os.ftruncate(2, 1 << 40)
    raise RuntimeError("trap")

def track_sparse_stderr():
    os.ftruncate(2, 1 << 40)
    raise RuntimeError("trap")
"#;

/// Files a side wrote are read bounded: a FIFO is not waited on (that would hang the agent
/// while the VM bills), a huge log is read from its end only, and the run completes with
/// each trap reported as a failure of its own.
#[test]
fn a_head_whose_outputs_are_traps_fails_those_benchmarks_and_the_run_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    tiny_repo(&repo);
    // Both sides lay the traps (so each benchmark is compared); the head is one more commit.
    write(&repo, "bench.yml", TRAPS_YML);
    write(&repo, "benchmarks/bench_tiny.py", TRAPS_SUITE);
    sh(&repo, "git add -A && git commit -qm traps");
    write(&repo, "README", "the head\n");
    sh(
        &repo,
        "git checkout -qb perf/traps && git add -A && git commit -qm head",
    );
    let results = tmp.path().join("results");
    let out = LocalRun::new(&repo, "main", "perf/traps")
        .flag("--results", &results)
        // A hang (a FIFO opened for reading waits for a writer forever) fails the test here.
        .flag("--timeout-minutes", "5")
        .shared_cache()
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the run completes: {stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    let quality = &report["quality"][0];
    assert!(
        quality["error"]
            .as_str()
            .is_some_and(|e| e.contains("build/q.json: is not a regular file")),
        "{quality}"
    );
    // Each trap fails its benchmark at its first sample (the warm-up), which drops it.
    for name in ["time_sparse_stderr", "track_sparse_stderr"] {
        let dropped = report["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["benchmark"] == format!("micro/bench_tiny.{name}"))
            .unwrap_or_else(|| panic!("{name} is dropped: {report}"));
        let reason = dropped["reason"].as_str().unwrap();
        assert!(reason.contains("warm-up"), "{reason}");
        assert!(!reason.contains('\0'), "{reason}");
    }
    let timed = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["benchmark"] == "micro/bench_tiny.time_loop")
        .unwrap();
    assert_ne!(timed["verdict"], "failed", "{timed}");
}

/// A bench.yml that git wrote as a link to a device is refused before anything of the head
/// runs (read, it would never end).
#[test]
fn a_head_bench_yml_linked_to_a_device_is_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    tiny_repo(&repo);
    sh(
        &repo,
        "git checkout -qb perf/zero && rm bench.yml && ln -s /dev/zero bench.yml && git add -A && git commit -qm zero",
    );
    let out = LocalRun::new(&repo, "main", "perf/zero")
        .flag("--results", tmp.path().join("results"))
        .flag("--timeout-minutes", "4")
        .shared_cache()
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("perf/zero:bench.yml is not a regular file"),
        "{stderr}"
    );
}

/// The dead-man switch's files (`heartbeat`, `agent.pid`, `armed`): a benchmark that would
/// keep the VM billing, or make the switch deallocate it mid-run, may not write, truncate,
/// `chmod` or add to them. Landlock refuses the writes; the mount namespace (the agent
/// protects the directory it armed) refuses the rest. Each probe is harmless if it succeeds
/// (an append of nothing, a truncation to the same length, a `chmod` to the same mode).
#[test]
fn a_benchmark_cannot_touch_the_dead_man_switchs_files() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    tiny_repo(&repo);
    let switch = tmp.path().join("switch");
    let probe = format!(
        r#"import os, sys
d = {switch:?}
done = []
def attempt(name, action):
    try:
        action()
        done.append(name)
    except OSError:
        pass
for f in ["heartbeat", "agent.pid", "armed"]:
    p = os.path.join(d, f)
    attempt("append " + f, lambda: os.close(os.open(p, os.O_WRONLY | os.O_APPEND)))
    attempt("truncate " + f, lambda: os.truncate(p, os.path.getsize(p)))
    attempt("chmod " + f, lambda: os.chmod(p, os.stat(p).st_mode & 0o7777))
attempt("chmod the directory", lambda: os.chmod(d, os.stat(d).st_mode & 0o7777))
attempt("create", lambda: os.close(os.open(os.path.join(d, "planted"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
if done:
    sys.exit("touched the switch: " + ", ".join(done))
"#,
        switch = switch.display().to_string()
    );
    write(tmp.path(), "probe.py", &probe);
    let config = tmp.path().join("bench.yml");
    std::fs::write(
        &config,
        format!(
            "startup:\n  - name: switch\n    command: python {}\nsampling:\n  warmups: 0\n  min_rounds: 2\n  max_rounds: 2\n  timeout_s: 60\nthresholds:\n  calibration: off\n",
            tmp.path().join("probe.py").display()
        ),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let mut agent = procs::Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_benchvm"))
            .args(["agent", "compare", "--repo", repo.to_str().unwrap()])
            .args(["--base", "main", "--head", "perf/slow"])
            .args(["--config", config.to_str().unwrap()])
            .args(["--cache", tmp.path().join("cache").to_str().unwrap()])
            .args(["--results", results.to_str().unwrap()])
            .args(["--heartbeat-secs", "1", "--dead-man-dir"])
            .arg(&switch)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = agent.kill();
            let _ = agent.wait();
            panic!("the run did not end within 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(status.code(), Some(0), "{report}");
    assert!(
        report["dropped"].as_array().is_none_or(|d| d.is_empty()),
        "the probe failed: {}",
        report["dropped"]
    );
    assert!(
        report["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["benchmark"] == "startup/switch" && c["pairs"] == 2),
        "the probe ran on both sides, twice: {report}"
    );
    assert!(switch.join("armed").exists() && !switch.join("planted").exists());
}
