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

use crate::side_file::{self, Links};

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
    /// The CPU the run is confined to ([`sample_cpu`]); `None`: wherever the kernel puts it.
    pub cpu: Option<usize>,
    /// Confines the run ([`super::confine`]): it and everything it starts may write only
    /// beneath these paths. `None`: the agent's own helpers (git, probes), unconfined.
    pub writable: Option<Vec<PathBuf>>,
}

/// The CPU micro-benchmark samples run on when `sampling.pin_cpu` is set: the last one this
/// process may use (the first tends to take more of the interrupts). `None` when it may use
/// only one, or the set cannot be read: then there is nothing to choose.
pub fn sample_cpu() -> Option<usize> {
    let allowed = allowed_cpus()?;
    (allowed.len() > 1).then(|| *allowed.last().expect("more than one"))
}

/// The CPUs this process may use; `None` when the set cannot be read.
pub(crate) fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size is the set's own.
    let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if got != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set within its size.
    Some(
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect(),
    )
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: CPU_SET writes within the set's size for any cpu below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}

/// Confines the command's process (and everything it starts) to `cpu`.
pub(crate) fn pin(command: &mut Command, cpu: usize) {
    pin_to(command, &[cpu]);
}

/// Confines the command's process (and everything it starts) to `cpus`.
pub(crate) fn pin_to(command: &mut Command, cpus: &[usize]) {
    let set = cpu_set(cpus);
    // SAFETY: the hook runs in the forked child before exec and makes one system call,
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Moves the running process `pid` (its thread of that id, and what it starts from now on)
/// to `cpu`.
pub(crate) fn move_to(pid: libc::pid_t, cpu: usize) -> io::Result<()> {
    let set = cpu_set(&[cpu]);
    // SAFETY: the set is a valid cpu_set_t of its own size.
    if unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
            Some(format!(
                "{}{:.1} s",
                crate::bench::TIMED_OUT,
                self.wall.as_secs_f64()
            ))
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

/// The process group of the run in progress (0 when none), so that an agent that loses
/// its controller can kill the benchmark it is waiting for before it exits.
static CURRENT_GROUP: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The process groups of running sample servers (measure/server.rs), which outlive a run.
static SERVER_GROUPS: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// Kills the process group of the run in progress, if any, and every sample server's.
pub fn kill_current() {
    let pid = CURRENT_GROUP.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        kill_group(pid);
    }
    if let Ok(groups) = SERVER_GROUPS.try_lock() {
        groups.iter().for_each(|&g| kill_group(g));
    }
}

/// Registers (or with `false` forgets) a sample server's process group for [`kill_current`].
pub(crate) fn track_group(pid: libc::pid_t, running: bool) {
    let mut groups = SERVER_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    groups.retain(|&g| g != pid);
    if running {
        groups.push(pid);
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
        // Everything spawn() would otherwise do inside the timed window is done here:
        // the complete environment is assembled (std would merge the inherited one with
        // the changes during spawn), and the program is resolved against the run's own
        // PATH (std falls back from posix_spawn to fork + exec for a bare name when PATH
        // is among the variables it sets).
        let (env, program) = environment(program, &spec.env, spec.pad, &spec.cwd)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(sink(spec.stdout.as_ref())?)
            .stderr(sink(spec.stderr.as_ref())?)
            .process_group(0);
        if let Some(cpu) = spec.cpu {
            pin(&mut command, cpu);
        }
        // Built before the clock starts; applied in the child, and kept until it is spawned.
        let ruleset = super::confine::confine(&mut command, spec.writable.as_deref())?;

        let start = Instant::now();
        let child = command.spawn()?;
        drop(ruleset);
        let pid = child.id() as libc::pid_t;
        CURRENT_GROUP.store(pid, std::sync::atomic::Ordering::SeqCst);
        let timed_out = wait_for_exit(pid, spec.timeout);
        CURRENT_GROUP.store(0, std::sync::atomic::Ordering::SeqCst);
        let waited = wait4(pid);
        let wall = start.elapsed();
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

/// What a run printed, with its outcome.
#[derive(Debug, Clone)]
pub struct Captured {
    pub outcome: RunOutcome,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` in `cwd` through `runner` (its own process group, killed with its tree at
/// `timeout` or when the agent is stopped) and returns what it printed, kept in a private
/// temporary directory while it runs. The way the agent runs every helper process (git,
/// Python probes, a catalogue's shell steps), so each has a deadline.
pub fn capture<R: ProcessRunner + ?Sized>(
    runner: &R,
    argv: Vec<String>,
    cwd: &std::path::Path,
    env: &[(String, String)],
    timeout: Duration,
    writable: Option<Vec<PathBuf>>,
) -> io::Result<Captured> {
    let dir = tempfile::Builder::new().prefix("benchvm-run").tempdir()?;
    let (stdout, stderr) = (dir.path().join("out"), dir.path().join("err"));
    let spec = RunSpec {
        argv,
        cwd: cwd.to_owned(),
        env: env.to_vec(),
        timeout,
        stdout: Some(stdout.clone()),
        stderr: Some(stderr.clone()),
        pad: 0,
        cpu: None,
        writable,
    };
    let outcome = runner.run(&spec)?;
    let stdout = match side_file::read(&stdout, side_file::LARGE, Links::Refuse) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        read => String::from_utf8_lossy(&read.unwrap_or_default()).into_owned(),
    };
    Ok(Captured {
        outcome,
        stdout,
        stderr: side_file::tail(&stderr),
    })
}

/// The complete environment of a run (the inherited one, less the padding and warm-up
/// variables, plus `vars` and a padding of `pad` bytes) and `program` resolved against its
/// PATH.
pub(crate) type Environment = Vec<(std::ffi::OsString, std::ffi::OsString)>;

pub(crate) fn environment(
    program: &str,
    vars: &[(String, String)],
    pad: usize,
    cwd: &std::path::Path,
) -> io::Result<(Environment, PathBuf)> {
    let mut env: Environment = std::env::vars_os()
        // The local loop's warm-up must not leak from a caller's shell into `compare`.
        .filter(|(k, _)| {
            k != PAD_VAR
                && k != crate::layers::asv::WARMUP_VAR
                && k != crate::layers::asv::REPEAT_VAR
                && !vars.iter().any(|(s, _)| k == s.as_str())
        })
        .collect();
    env.extend(vars.iter().map(|(k, v)| (k.into(), v.into())));
    env.push((PAD_VAR.into(), "x".repeat(pad).into()));
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let program = resolve(program, path_var.as_deref(), cwd)?;
    Ok((env, program))
}

/// Blocks until the child exits or `timeout` passes; on timeout kills its whole group and
/// returns true. The child is not reaped here (wait4 does that, collecting its rusage).
///
/// A pidfd polled with a timeout wakes the moment the child exits and costs no thread;
/// on kernels without pidfd_open (before 5.3) a watchdog thread does the same job.
fn wait_for_exit(pid: libc::pid_t, timeout: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if fd < 0 {
        return watchdog(pid, timeout);
    }
    let deadline = Instant::now() + timeout;
    let fired = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            break false;
        }
        if r == 0 && left.is_zero() {
            break true;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break false; // wait4 below still reaps it; no timeout enforcement is lost silently
        }
        // r == 0 with time left: poll rounded down to the millisecond; go round again.
    };
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    if fired {
        kill_group(pid);
    }
    fired
}

fn watchdog(pid: libc::pid_t, timeout: Duration) -> bool {
    let (done, deadline) = mpsc::channel::<()>();
    let guard = thread::spawn(move || {
        let fired = matches!(
            deadline.recv_timeout(timeout),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if fired {
            kill_group(pid);
        }
        fired
    });
    // Block until the child is a zombie without reaping it, so wait4 can collect rusage.
    // SAFETY: siginfo_t is plain old data; zeroed is valid and waitid overwrites it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with WNOWAIT only observes the child; info is a valid out-pointer.
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    let _ = done.send(());
    guard.join().unwrap_or(false)
}

/// The program's path: as given when it contains a slash (relative to `cwd`), else the
/// first executable file of that name on `path`.
fn resolve(
    program: &str,
    path: Option<&std::ffi::OsStr>,
    cwd: &std::path::Path,
) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(cwd.join(program));
    }
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::split_paths(path.unwrap_or_default())
        .map(|dir| {
            if dir.is_relative() {
                cwd.join(dir)
            } else {
                dir
            }
            .join(program)
        })
        .find(|p| executable(p))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{program} is not on PATH")))
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

pub(crate) fn kill_group(pid: libc::pid_t) {
    // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
}

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`): a
/// process the benchmarked code leaves behind, even in a session of its own (`setsid`) and
/// forked twice, is re-parented to this process instead of init, so it stays a descendant
/// that [`stop_descendants`] finds.
pub fn adopt_orphans() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Stops what a run left running ([`stop_descendants`]) when dropped.
#[derive(Debug)]
pub struct StopLeftovers;

impl Drop for StopLeftovers {
    fn drop(&mut self) {
        stop_descendants(Duration::from_secs(5));
    }
}

/// Kills (SIGKILL) and reaps every descendant of this process, and every process group one
/// of them (a zombie child included) was in, again and again until nothing is found or
/// reaped for 300 ms, or `limit` has passed. Returns how many processes it saw.
///
/// The groups matter: a process that forks and lets its parent exit, over and over, lives
/// at each pid for microseconds, so a pid read from /proc is gone when it is signalled; but
/// its children stay in its process group, which one `killpg` reaches at once, and each
/// parent it leaves becomes a zombie child of this process (the reaper) that names the
/// group. A process that also starts a new session at every fork is not caught so (see
/// docs/untrusted-code.md). Only for the end of a run: it reaps any child, so nothing else
/// may be waiting for one.
pub fn stop_descendants(limit: Duration) -> usize {
    let me = std::process::id() as libc::pid_t;
    // SAFETY: getpgrp and getsid(0) have no preconditions.
    let (own_group, own_session) = unsafe { (libc::getpgrp(), libc::getsid(0)) };
    let start = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    let mut quiet_since = Instant::now();
    loop {
        let (living, groups) = descendants(me);
        for &group in &groups {
            if group > 1 && group != own_group && group != own_session {
                kill_group(group);
            }
        }
        for &pid in &living {
            // SAFETY: kill(2) has no memory-safety preconditions; ESRCH (gone) is fine.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        seen.extend(living.iter().copied());
        let mut reaped = 0;
        // SAFETY: waitpid with a null status pointer.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {
            reaped += 1;
        }
        if !living.is_empty() || !groups.is_empty() || reaped > 0 {
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() > Duration::from_millis(300) || start.elapsed() > limit {
            return seen.len();
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Every living process below `root` in the parent tree, and the process groups of those
/// and of `root`'s zombie children (a zombie's children are already re-parented to `root`),
/// from `/proc/<pid>/stat`.
fn descendants(root: libc::pid_t) -> (Vec<libc::pid_t>, std::collections::BTreeSet<libc::pid_t>) {
    let mut groups = std::collections::BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (Vec::new(), groups);
    };
    let mut children: std::collections::HashMap<libc::pid_t, Vec<(libc::pid_t, libc::pid_t)>> =
        std::collections::HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: the fields follow the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .unwrap_or("")
            .split_whitespace()
            .take(3)
            .collect();
        let [state, ppid, pgrp] = fields[..] else {
            continue;
        };
        let (Ok(ppid), Ok(pgrp)) = (ppid.parse(), pgrp.parse()) else {
            continue;
        };
        if state == "Z" {
            if ppid == root {
                groups.insert(pgrp);
            }
            continue;
        }
        children.entry(ppid).or_default().push((pid, pgrp));
    }
    let mut living = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &(c, pgrp) in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            living.push(c);
            groups.insert(pgrp);
            queue.push(c);
        }
    }
    (living, groups)
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
            cpu: None,
            writable: None,
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
    #[expect(
        clippy::zombie_processes,
        reason = "the children are reaped with wait4 directly"
    )]
    fn the_thread_watchdog_fallback_also_kills_at_the_deadline() {
        let child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let start = Instant::now();
        assert!(watchdog(pid, Duration::from_millis(200)));
        let (status, _) = wait4(pid).unwrap();
        assert!(libc::WIFSIGNALED(status));
        assert!(start.elapsed() < Duration::from_secs(5));
        let quick = Command::new("true").process_group(0).spawn().unwrap();
        assert!(!watchdog(
            quick.id() as libc::pid_t,
            Duration::from_secs(20)
        ));
        wait4(quick.id() as libc::pid_t).unwrap();
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = SystemRunner
            .run(&spec(&["/nonexistent/benchvm-tool"]))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
