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

/// A bench.yml in `dir` whose benchmark `hops` starts a compiled process that calls `setsid`,
/// then forks and lets its parent exit, again and again for two minutes: its pid changes
/// every few microseconds, so a pid read from /proc is gone when it is signalled (a review's
/// escape from the first reaper), and no `pgrep` sees it either. So it shows it is alive by
/// sending a datagram, every 100 ms, to `port` on loopback (the confinement leaves the
/// network alone; `/dev/shm` is the namespace's own).
pub fn hopping_config(dir: &Path, port: u16) -> PathBuf {
    let source = dir.join("hopper.c");
    std::fs::write(
        &source,
        "#include <arpa/inet.h>\n#include <netinet/in.h>\n#include <stdlib.h>\n#include <sys/socket.h>\n#include <time.h>\n#include <unistd.h>\nstatic double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }\nint main(int argc, char **argv) {\n  (void)argc;\n  setsid();\n  struct sockaddr_in to = {0};\n  to.sin_family = AF_INET;\n  to.sin_port = htons(atoi(argv[1]));\n  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);\n  double start = now(), told = 0;\n  while (now() - start < 120) {\n    if (now() - told > 0.1) {\n      told = now();\n      int s = socket(AF_INET, SOCK_DGRAM, 0);\n      if (s >= 0) { sendto(s, \"alive\", 5, 0, (struct sockaddr *)&to, sizeof to); close(s); }\n    }\n    pid_t p = fork();\n    if (p > 0) _exit(0);\n  }\n  return 0;\n}\n",
    )
    .unwrap();
    let hopper = dir.join("hopper");
    let built = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&hopper)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) is installed");
    assert!(built.success());
    config(
        dir,
        &format!(
            "startup:\n  - name: hops\n    command: \"python -c 'import subprocess; subprocess.Popen([\\\"{}\\\", \\\"{port}\\\"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)'\"\nsampling:\n  warmups: 0\n  min_rounds: 2\n  max_rounds: 2\n",
            hopper.display(),
        ),
    )
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

/// A child process killed (and reaped) when the test drops it, panicking or not: a test that
/// fails while a run is going must not leave it holding the host lock the other tests wait
/// for (a controller killed this way takes its agent with it).
#[derive(Debug)]
pub struct Killed(pub std::process::Child);

impl std::ops::Deref for Killed {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Killed {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
