//! One run per host at a time: an exclusive `flock` on a file in the cache. The kernel
//! releases it when the holder exits, however it exits, so a crashed run never leaves a
//! stale lock behind; the file's text (who holds it) is only for the waiting message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often a waiting run says that it is still waiting.
const NOTICE_EVERY: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

/// The held lock; dropping it releases the host.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

/// Takes the host lock at `path`, waiting up to `timeout` (with a progress line now and
/// then). `holder` describes this run for whoever waits next.
pub fn acquire(
    path: &Path,
    holder: &str,
    timeout: Duration,
    progress: &mut dyn FnMut(String),
) -> Result<HostLock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let start = Instant::now();
    let mut last_notice: Option<Instant> = None;
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::io("lock", path, err));
        }
        let mut who = String::new();
        let _ = file.rewind().and_then(|_| file.read_to_string(&mut who));
        let who = if who.trim().is_empty() {
            "another run".to_owned()
        } else {
            who.trim().to_owned()
        };
        if start.elapsed() >= timeout {
            return Err(Error::infra(
                "take the host lock",
                format!(
                    "{who} still holds {} after {:.0} s",
                    path.display(),
                    timeout.as_secs_f64()
                ),
            ));
        }
        if last_notice.is_none_or(|t| t.elapsed() >= NOTICE_EVERY) {
            progress(format!("waiting for the host lock: held by {who}"));
            last_notice = Some(Instant::now());
        }
        std::thread::sleep(POLL);
    }
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "pid {} ({holder})", std::process::id()));
    Ok(HostLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_then_fails_clearly_and_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.lock");
        let mut lines = Vec::new();
        let first = acquire(
            &path,
            "run A: main vs perf/x",
            Duration::from_secs(1),
            &mut |l| lines.push(l),
        )
        .unwrap();
        let err = acquire(&path, "run B", Duration::from_millis(500), &mut |l| {
            lines.push(l)
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("run A: main vs perf/x") && msg.contains("still holds"),
            "{msg}"
        );
        assert_eq!(err.process_exit_code(), crate::exit::INFRA);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("waiting for the host lock: held by pid")),
            "{lines:?}"
        );
        drop(first);
        acquire(&path, "run B", Duration::from_millis(500), &mut |_| {}).unwrap();
    }

    #[test]
    fn a_dead_holder_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.lock");
        // A child process takes the lock and is killed: no stale lock may remain.
        let holder = "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\ntime.sleep(30)";
        let mut child = std::process::Command::new("python3")
            .args(["-c", holder])
            .arg(&path)
            .spawn()
            .unwrap();
        let t = Instant::now();
        while acquire(&path, "probe", Duration::ZERO, &mut |_| {}).is_ok() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "child never took the lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        acquire(&path, "after", Duration::from_secs(2), &mut |_| {}).unwrap();
    }
}
