//! The local host: this machine. The controller binary doubles as the agent
//! (`benchvm agent …`), so nothing has to be installed beside it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::Host;
use benchvm_agent::job::Job;
use benchvm_agent::spans::Timeline;

/// This machine: nothing to start or release. The agent is stopped once it has run for
/// `timeout` (`--timeout-minutes`), as a remote one is.
#[derive(Debug, Clone, Copy)]
pub struct LocalHost {
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl Host for LocalHost {
    async fn run_agent(&self, job: &Job, _timeline: &Timeline) -> Result<()> {
        run_agent(job, self.timeout).await
    }
}

/// Variables that carry a credential of the job (the Action's inputs include the GitHub
/// token and the SSH key; the runner's tokens; Azure's secret).
pub fn is_credential(name: &str) -> bool {
    name.starts_with("INPUT_")
        || name.starts_with("ACTIONS_")
        || name.starts_with("STATE_")
        || matches!(
            name,
            "GITHUB_TOKEN"
                | "GH_TOKEN"
                | "AZURE_CLIENT_SECRET"
                | "AZURE_FEDERATED_TOKEN"
                | "SSH_AUTH_SOCK"
        )
}

async fn run_agent(job: &Job, timeout: Duration) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::caused("find the benchvm binary", e))?;
    // stderr is inherited: the agent's progress lines reach the job log as they come. A tokio
    // child, not a ProcessRunner run: it is awaited beside the signal handlers, and the agent
    // it starts runs its own processes through the ProcessRunner.
    let mut cmd = tokio::process::Command::new(exe);
    // The benchmarked code runs under the agent: it gets none of the job's credentials.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_credential) {
            cmd.env_remove(&name);
        }
    }
    cmd.arg("agent")
        .args(job.to_argv())
        .stdout(std::process::Stdio::null());
    // A session of its own, so that whatever the benchmarked code leaves behind (in a
    // process group of its own, which the agent's group kills miss) can be found and
    // stopped once the agent is done. ^C still stops it: the controller's handler does. And
    // SIGTERM when the controller dies, however it dies (SIGKILL included, or a CI runner
    // killing the controller's process group, which the agent is no longer in): the agent
    // then stops its benchmark and exits.
    let controller = std::process::id() as libc::pid_t;
    // SAFETY: setsid(2), prctl(2) and getppid(2) are async-signal-safe and touch no memory
    // of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            // The controller died before the request took effect: nothing will signal us.
            if libc::getppid() != controller {
                return Err(std::io::Error::other("the controller is gone"));
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::caused("start the agent", e))?;
    let mut stop = StopOnDrop(child.id());
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let sid = stop.0.take();
    if waited.is_err() {
        // SIGTERM first: the agent stops its benchmark and exits; whatever does not is
        // stopped with the rest of its session below.
        sid.into_iter().for_each(terminate);
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
    if let Some(sid) = sid {
        tokio::task::spawn_blocking(move || stop_session(sid))
            .await
            .map_err(|e| Error::caused("stop what the agent left running", e))?;
    }
    let status = match waited {
        Ok(status) => status.map_err(|e| Error::caused("run the agent", e))?,
        Err(_) => {
            // Reaped, if the session stop above had to kill it.
            let _ = child.wait().await;
            return Err(Error::infra(
                "run the agent",
                format!(
                    "it ran longer than --timeout-minutes ({} s) and was stopped",
                    timeout.as_secs()
                ),
            ));
        }
    };
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Error::Agent { code }),
        None => Err(Error::infra(
            "run the agent",
            format!(
                "it was killed by signal {}",
                std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
            ),
        )),
    }
}

/// A cancelled job must not leave the agent running: dropping the job's future (a signal
/// aborts it) sends the agent SIGTERM, on which it kills the benchmark in progress (its own
/// process group, which SIGKILL to the agent would orphan) and exits.
struct StopOnDrop(Option<u32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.into_iter().for_each(terminate);
    }
}

/// SIGTERM to the agent: it stops its benchmark and exits.
fn terminate(pid: u32) {
    // SAFETY: kill(2) with a pid of our own unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

/// Stops every process left in session `sid` (the finished agent's): SIGTERM, and to what
/// is still there after 5 s SIGSTOP and SIGKILL until none is left. Sessions are read from
/// `/proc/<pid>/stat`; a zombie (already dead, not yet reaped) does not count.
fn stop_session(sid: u32) {
    let members = || -> Vec<libc::pid_t> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
            .filter(|pid| session_of(*pid) == Some(sid))
            .collect()
    };
    let signal = |signal| {
        for pid in members() {
            // SAFETY: kill(2); a pid that ended since it was read gets ESRCH.
            unsafe { libc::kill(pid, signal) };
        }
    };
    if sid <= 1 {
        return;
    }
    signal(libc::SIGTERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !members().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // What is left is frozen, then killed, until nothing is: a process that keeps forking
    // cannot slip out between the listing and the signal.
    for _ in 0..50 {
        if members().is_empty() {
            return;
        }
        signal(libc::SIGSTOP);
        signal(libc::SIGKILL);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The session id of `pid`: the sixth field of `/proc/<pid>/stat`, counted after the
/// command name (which may hold spaces and parentheses).
/// `None` for a zombie: it is dead already, only not yet reaped.
fn session_of(pid: libc::pid_t) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_read_past_a_command_name_with_spaces_and_parentheses() {
        // SAFETY: getsid(0) reads this process's session.
        let own = unsafe { libc::getsid(0) } as u32;
        assert_eq!(session_of(std::process::id() as libc::pid_t), Some(own));
        let tmp = tempfile::tempdir().unwrap();
        let odd = tmp.path().join("a (b) c");
        std::fs::copy("/bin/sleep", &odd).unwrap();
        let mut child = std::process::Command::new(&odd).arg("5").spawn().unwrap();
        let read = session_of(child.id() as libc::pid_t);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(read, Some(own));
    }
}
