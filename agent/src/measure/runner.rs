//! Runs one process and measures it: wall time from a monotonic clock, user/sys CPU and
//! peak RSS from `wait4` for that child alone, in its own process group so a timeout kills
//! the whole tree.

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The name of the padding variable. Its length changes per run: the size of the
/// environment shifts the initial stack address and with it alignment-sensitive timings
/// (Mytkowicz et al., "Producing Wrong Data Without Doing Anything Obviously Wrong!",
/// ASPLOS 2009); randomising it turns a hidden bias into visible noise.
pub const PAD_VAR: &str = "BENCHVM_ENV_PAD";

/// The largest padding, in bytes: a few pages, enough to cycle through stack alignments.
pub const MAX_PAD: usize = 4096;

/// One process to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set on top of the inherited environment.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Where stdout goes; `None` discards it.
    pub stdout: Option<PathBuf>,
    /// Where stderr goes; `None` discards it.
    pub stderr: Option<PathBuf>,
    /// Length of the environment padding for this run.
    pub pad: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOutcome {
    pub wall: Duration,
    pub user: Duration,
    pub sys: Duration,
    /// Peak resident set size in bytes: the largest process of the child's tree that was
    /// waited for (Linux folds reaped descendants into the child's `ru_maxrss`).
    pub max_rss: u64,
    pub status: ExitStatus,
    pub timed_out: bool,
}

impl RunOutcome {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// A short description of a failure, or `None` for a successful run.
    pub fn failure(&self) -> Option<String> {
        if self.timed_out {
            Some(format!("timed out after {:.1} s", self.wall.as_secs_f64()))
        } else if let Some(code) = self.status.code() {
            (code != 0).then(|| format!("exited with status {code}"))
        } else {
            Some(format!(
                "killed by signal {}",
                self.status.signal().unwrap_or_default()
            ))
        }
    }
}

/// Runs processes; the real one forks, tests may script outcomes (as hyperfine's executor).
pub trait ProcessRunner {
    fn run(&self, spec: &RunSpec) -> io::Result<RunOutcome>;
}

/// Runs real processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl ProcessRunner for SystemRunner {
    fn run(&self, spec: &RunSpec) -> io::Result<RunOutcome> {
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&spec.cwd)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(PAD_VAR, "x".repeat(spec.pad))
            .stdin(Stdio::null())
            .stdout(sink(spec.stdout.as_ref())?)
            .stderr(sink(spec.stderr.as_ref())?)
            .process_group(0);

        let start = Instant::now();
        let child = command.spawn()?;
        let pid = child.id() as libc::pid_t;
        // The watchdog kills the whole group at the deadline; the main thread blocks in
        // wait4 so that the clock stops as soon as the child exits, not at a poll tick.
        let (done, deadline) = mpsc::channel::<()>();
        let timeout = spec.timeout;
        let watchdog = thread::spawn(move || {
            let fired = matches!(
                deadline.recv_timeout(timeout),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            if fired {
                kill_group(pid);
            }
            fired
        });
        let waited = wait4(pid);
        let wall = start.elapsed();
        let _ = done.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        // Anything the child left behind in its group goes too.
        kill_group(pid);
        let (status, usage) = waited?;
        Ok(RunOutcome {
            wall,
            user: timeval(usage.ru_utime),
            sys: timeval(usage.ru_stime),
            max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
            status: ExitStatus::from_raw(status),
            timed_out,
        })
    }
}

fn sink(path: Option<&PathBuf>) -> io::Result<Stdio> {
    Ok(match path {
        Some(path) => Stdio::from(File::create(path)?),
        None => Stdio::null(),
    })
}

fn wait4(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value that wait4 overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet reaped (std's Child never waited on it);
        // both out-pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> RunSpec {
        RunSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: std::env::temp_dir(),
            env: vec![],
            timeout: Duration::from_secs(20),
            stdout: None,
            stderr: None,
            pad: 0,
        }
    }

    #[test]
    fn measures_wall_time_of_a_sleep() {
        let out = SystemRunner.run(&spec(&["sleep", "0.2"])).unwrap();
        assert!(out.success());
        assert!(out.wall >= Duration::from_millis(200), "{:?}", out.wall);
        assert!(out.wall < Duration::from_secs(5), "{:?}", out.wall);
    }

    #[test]
    fn reports_exit_status() {
        let out = SystemRunner.run(&spec(&["sh", "-c", "exit 3"])).unwrap();
        assert!(!out.success());
        assert_eq!(out.failure().unwrap(), "exited with status 3");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        // The grandchild would write the marker after 2 s unless the group is killed.
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let mut s = spec(&["sh", "-c", &script]);
        s.timeout = Duration::from_millis(300);
        let out = SystemRunner.run(&s).unwrap();
        assert!(out.timed_out);
        assert!(out.failure().unwrap().starts_with("timed out"));
        assert!(out.wall < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "grandchild outlived the timeout");
    }

    #[test]
    fn peak_rss_sees_a_large_allocation() {
        let out = SystemRunner
            .run(&spec(&[
                "python3",
                "-c",
                "b = bytearray(150 * 1024 * 1024)",
            ]))
            .unwrap();
        assert!(out.success());
        assert!(out.max_rss > 150 * 1024 * 1024, "{}", out.max_rss);
        assert!(out.max_rss < 400 * 1024 * 1024, "{}", out.max_rss);
    }

    #[test]
    fn cpu_time_is_for_the_child() {
        let out = SystemRunner
            .run(&spec(&["python3", "-c", "sum(range(20_000_000))"]))
            .unwrap();
        assert!(out.user > Duration::from_millis(100), "{:?}", out.user);
    }

    #[test]
    fn padding_and_env_reach_the_child_and_output_is_captured() {
        let dir = tempfile::tempdir().unwrap();
        let out_path = dir.path().join("out");
        let mut s = spec(&[
            "sh",
            "-c",
            "printf '%s %s' \"${#BENCHVM_ENV_PAD}\" \"$FOO\"",
        ]);
        s.env = vec![("FOO".into(), "bar".into())];
        s.pad = 123;
        s.stdout = Some(out_path.clone());
        SystemRunner.run(&s).unwrap();
        assert_eq!(std::fs::read_to_string(out_path).unwrap(), "123 bar");
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = SystemRunner
            .run(&spec(&["/nonexistent/benchvm-tool"]))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
