//! Knowing that the controller is still there. A remote agent whose controller vanished
//! (the CI job was killed, the network dropped) would otherwise run on for hours and keep
//! the host locked. Two signals, one each way:
//! - the agent writes a tagged line to stderr every few seconds (the controller drops
//!   those lines); when such a write fails, the pipe to the controller is gone;
//! - the controller writes a newline to the agent's stdin every keepalive interval; when
//!   nothing arrives for a while, the connection is dead even though no write fails (a
//!   network that stopped delivering keeps every pipe on the host open, and sshd may not
//!   notice while the command keeps writing).
//!
//! Either way the agent kills the benchmark it is running and exits.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::exit;
use crate::measure::runner;

/// The line the controller filters out of the progress stream.
pub const TAG: &str = "benchvm-agent:heartbeat";

/// Starts the heartbeat thread. With a dead-man directory (and no stdin watch, which
/// refreshes it instead), every heartbeat written also refreshes `DIR/heartbeat`, which
/// the VM's dead-man switch watches.
pub fn start(every: Duration, dead_man: Option<std::path::PathBuf>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(every);
            line(TAG);
            if let Some(dir) = &dead_man {
                let _ = std::fs::write(dir.join("heartbeat"), b"");
            }
        }
    });
}

/// Watches the controller's beats on stdin: no byte for `silence`, or the end of stdin,
/// stops the run. Each beat also refreshes `DIR/heartbeat` for the dead-man switch. Stdin
/// is moved to a private descriptor first and replaced by /dev/null, so no process the
/// agent starts can swallow a beat.
pub fn watch_controller(
    silence: Duration,
    dead_man: Option<std::path::PathBuf>,
) -> std::io::Result<()> {
    // SAFETY: a copy of fd 0 this function owns from here on, closed on exec: no process
    // the agent starts inherits it (one could read the beats, and the agent would stop).
    let private = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if private < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `private` is a valid descriptor nobody else owns.
    let mut beats = unsafe { std::fs::File::from_raw_fd(private) };
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: both descriptors are valid; fd 0 is atomically replaced.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let start = Instant::now();
    let heard = Arc::new(AtomicU64::new(0));
    let last = heard.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        loop {
            match beats.read(&mut buf) {
                Ok(0) | Err(_) => stop("the controller closed the connection"),
                Ok(_) => {
                    last.store(start.elapsed().as_millis() as u64, Ordering::SeqCst);
                    if let Some(dir) = &dead_man {
                        let _ = std::fs::write(dir.join("heartbeat"), b"");
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let quiet = start
                .elapsed()
                .saturating_sub(Duration::from_millis(heard.load(Ordering::SeqCst)));
            if quiet > silence {
                stop(&format!(
                    "nothing heard from the controller for {} s",
                    quiet.as_secs()
                ));
            }
        }
    });
    Ok(())
}

static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    // Only an atomic store: all a signal handler may safely do.
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// SIGTERM, SIGINT and SIGHUP stop the run cleanly: the benchmark in progress (its own
/// process group) is killed too, which the default action would leave running.
pub fn stop_on_signals() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
    }
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let signal = STOP_SIGNAL.load(Ordering::SeqCst);
            if signal != 0 {
                stop(&format!("received signal {signal}"));
            }
        }
    });
}

/// Set when the run was asked to stop; see [`let_the_run_wind_down`].
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Whether the main thread winds down itself after a stop (it has something to put back).
static WIND_DOWN: AtomicBool = AtomicBool::new(false);

/// After a stop signal, let the run end itself instead of exiting at once: the benchmark
/// in progress is still killed (and any started after it, for a while), and the main thread,
/// checking [`stop_requested`] after each process it runs, returns an error and so puts
/// back what it changed (validate-selection: the checkout) before exiting 3. If it has not
/// exited 10 s later, the process exits anyway.
pub fn let_the_run_wind_down() {
    WIND_DOWN.store(true, Ordering::SeqCst);
}

/// Whether a stop signal has arrived (only ever true with [`let_the_run_wind_down`]).
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// Stops the benchmark in progress and exits; the host lock goes with the process.
fn stop(reason: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "benchvm-agent: {reason}: stopping the run"
    );
    STOP_REQUESTED.store(true, Ordering::SeqCst);
    runner::kill_current();
    if WIND_DOWN.load(Ordering::SeqCst) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
            runner::kill_current();
        }
    }
    // Whatever the benchmarked code left running (adopted: `runner::adopt_orphans`).
    runner::stop_descendants(Duration::from_secs(5));
    std::process::exit(exit::INFRA);
}

/// Arms the VM's dead-man switch (cloud-init/benchvm-deadman.sh): if the heartbeat file
/// goes silent for `silence`, the switch kills this agent's process group and has Azure
/// deallocate the VM.
///
/// Nothing disarms it: once the run is over the beats stop, and `silence` later the switch
/// deallocates the VM, unless the controller has done so already (the usual case) or the
/// next run, holding the host, armed it with its own pid. So a controller whose deallocation
/// keeps failing (an ARM outage, a revoked credential) leaves the VM up for about `silence`,
/// not until the uptime cap.
pub fn arm(dir: &std::path::Path, silence: Duration) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("heartbeat"), b"")?;
    std::fs::write(dir.join("agent.pid"), std::process::id().to_string())?;
    std::fs::write(dir.join("armed"), silence.as_secs().to_string())
}

/// Writes one line to stderr; if the controller's end of the pipe is gone, stops the
/// benchmark in progress and exits (the host lock is released with the process).
pub fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    if writeln!(err, "{text}").and_then(|_| err.flush()).is_err() {
        drop(err);
        // Nobody is listening any more; the exit code is for logs on the host.
        stop("the controller is gone");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arming_writes_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("benchvm");
        super::arm(&run, std::time::Duration::from_secs(600)).unwrap();
        assert_eq!(std::fs::read_to_string(run.join("armed")).unwrap(), "600");
        assert_eq!(
            std::fs::read_to_string(run.join("agent.pid")).unwrap(),
            std::process::id().to_string()
        );
        assert!(run.join("heartbeat").exists());
    }
}
