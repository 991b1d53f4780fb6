//! Processes a test plants on the host and looks for: bench.yml files whose one startup
//! benchmark is a Python process marked by a unique word in its command line, and bounded
//! waits for such processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A bench.yml in `dir` whose benchmark `slow` sleeps two minutes, `marker` in its command
/// line; two rounds, no warm-up.
pub fn slow_config(dir: &Path, marker: &str) -> PathBuf {
    config(
        dir,
        &format!(
            "startup:\n  - name: slow\n    command: \"python -c 'import time; time.sleep(120)' {marker}\"\nsampling:\n  warmups: 0\n  min_rounds: 2\n  max_rounds: 2\n  timeout_s: 300\n"
        ),
    )
}

/// A bench.yml in `dir` whose benchmark `leaves` starts a process in a session (and so a
/// process group) of its own, `setsid`, (`marker` in its command line, sleeping two minutes)
/// and returns at once.
pub fn leaving_config(dir: &Path, marker: &str) -> PathBuf {
    left_behind(dir, marker, "import time; time.sleep(120)")
}

fn left_behind(dir: &Path, marker: &str, code: &str) -> PathBuf {
    config(
        dir,
        &format!(
            "startup:\n  - name: leaves\n    command: \"python -c 'import subprocess, sys; subprocess.Popen([sys.executable, \\\"-c\\\", \\\"{code}\\\", \\\"{marker}\\\"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)'\"\nsampling:\n  warmups: 0\n  min_rounds: 2\n  max_rounds: 2\n"
        ),
    )
}

fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("bench.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The pids of the processes whose command line contains `pattern`.
pub fn pids(pattern: &str) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Waits until no process's command line contains any of `patterns`; fails the test with
/// `what` after `limit`.
pub fn wait_gone(patterns: &[&str], limit: Duration, what: &str) {
    let t = Instant::now();
    while patterns.iter().any(|p| !pids(p).is_empty()) {
        assert!(t.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
