//! The controller's beats reach a remote agent on its stdin (`--controller-silence`). No
//! process the agent starts may hold that pipe: head code reading it would swallow the beats,
//! and the agent would stop as if its controller were gone. A benchmark of the head counts
//! the readable pipes and sockets it inherited, while a test thread plays the controller.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{sh, write};

const PROBE: &str = r#"import fcntl, os, stat


def track_inherited_readable_pipes():
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd in (1, 2):
            continue
        try:
            mode = os.fstat(fd).st_mode
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue  # the listing's own descriptor, closed by now
        readable = flags & os.O_ACCMODE in (os.O_RDONLY, os.O_RDWR)
        if readable and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            found.append(fd)
    return len(found)


track_inherited_readable_pipes.unit = "descriptors"
"#;

#[test]
fn no_benchmark_inherits_the_pipe_the_controllers_beats_arrive_on() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write(
        &repo,
        "pyproject.toml",
        "[project]\nname = \"beatpkg\"\nversion = \"0.1\"\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
    );
    write(&repo, "src/beatpkg/__init__.py", "");
    write(
        &repo,
        "bench.yml",
        "micro:\n  asv: benchmarks\nsampling:\n  min_rounds: 2\n  max_rounds: 2\n  timeout_s: 60\n",
    );
    write(&repo, "benchmarks/bench_fds.py", PROBE);
    sh(
        &repo,
        "git init -q -b main && git add -A && git commit -qm base && git commit -q --allow-empty -m head && git branch head && git reset -q --hard HEAD~1",
    );
    let results = tmp.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args(["compare", "--repo"])
        .arg(&repo)
        .args(["--base", "main", "--head", "head", "--results"])
        .arg(&results)
        .arg("--cache")
        .arg(tmp.path().join("cache"))
        .args(["--controller-silence", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    // The controller: a beat every second, until the agent ends or ten minutes pass.
    let mut beats = child.stdin.take().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        let _ = beats.write_all(b"\n");
        std::thread::sleep(Duration::from_secs(1));
    };
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {stderr}");
    let report = report(&results);
    let probe = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["benchmark"] == "micro/bench_fds.track_inherited_readable_pipes")
        .unwrap_or_else(|| panic!("the probe ran: {report}"));
    assert_eq!(probe["void_pairs"], 0, "{probe}");
    assert_eq!(probe["base_median"], 0.0, "{probe}");
    assert_eq!(probe["head_median"], 0.0, "{probe}");
}

fn report(results: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap()).unwrap()
}
