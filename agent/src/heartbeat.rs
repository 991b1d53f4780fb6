//! Knowing that the controller is still there. A remote agent whose controller vanished
//! (the CI job was killed, the network dropped) would otherwise run on for hours and keep
//! the host locked. With a heartbeat, the agent writes a tagged line to stderr every few
//! seconds; the controller drops those lines. When such a write fails, the pipe to the
//! controller is gone: the agent kills the benchmark it is running and exits.

use std::io::Write;
use std::time::Duration;

use crate::exit;
use crate::measure::runner;

/// The line the controller filters out of the progress stream.
pub const TAG: &str = "benchvm-agent:heartbeat";

/// Starts the heartbeat thread. With a dead-man directory, every heartbeat that reached
/// the controller also refreshes `DIR/heartbeat`, which the VM's dead-man switch watches.
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

/// Arms the VM's dead-man switch (cloud-init/benchvm-deadman.sh): if the heartbeat file
/// goes silent for `silence`, the switch kills this agent's process group and has Azure
/// deallocate the VM. Disarmed by dropping the returned guard.
pub fn arm(dir: &std::path::Path, silence: Duration) -> std::io::Result<DeadMan> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("heartbeat"), b"")?;
    std::fs::write(dir.join("agent.pid"), std::process::id().to_string())?;
    std::fs::write(dir.join("armed"), silence.as_secs().to_string())?;
    Ok(DeadMan {
        dir: dir.to_owned(),
    })
}

/// The armed switch; a run that ends normally disarms it.
#[derive(Debug)]
pub struct DeadMan {
    dir: std::path::PathBuf,
}

impl Drop for DeadMan {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("armed"));
    }
}

/// Writes one line to stderr; if the controller's end of the pipe is gone, stops the
/// benchmark in progress and exits (the host lock is released with the process).
pub fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    if writeln!(err, "{text}").and_then(|_| err.flush()).is_err() {
        runner::kill_current();
        // Nobody is listening any more; the exit code is for logs on the host.
        std::process::exit(exit::INFRA);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arming_writes_the_files_and_a_finished_run_disarms() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("benchvm");
        let guard = super::arm(&run, std::time::Duration::from_secs(600)).unwrap();
        assert_eq!(std::fs::read_to_string(run.join("armed")).unwrap(), "600");
        assert_eq!(
            std::fs::read_to_string(run.join("agent.pid")).unwrap(),
            std::process::id().to_string()
        );
        assert!(run.join("heartbeat").exists());
        drop(guard);
        assert!(!run.join("armed").exists());
    }
}
