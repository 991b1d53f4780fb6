//! The local host: this machine. The controller binary doubles as the agent
//! (`benchvm agent …`), so nothing has to be installed beside it.

use crate::error::{Error, Result};
use crate::host::Host;
use benchvm_agent::job::Job;
use benchvm_agent::spans::Timeline;

/// This machine: nothing to start or release.
#[derive(Debug, Clone, Copy)]
pub struct LocalHost;

#[async_trait::async_trait]
impl Host for LocalHost {
    async fn run_agent(&self, job: &Job, _timeline: &Timeline) -> Result<()> {
        run_agent(job).await
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

async fn run_agent(job: &Job) -> Result<()> {
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
    let mut child = cmd
        .arg("agent")
        .args(job.to_argv())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::caused("start the agent", e))?;
    let mut stop = StopOnDrop(child.id());
    let status = child
        .wait()
        .await
        .map_err(|e| Error::caused("run the agent", e))?;
    stop.0 = None;
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
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) with a pid of our own unreaped child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
}
