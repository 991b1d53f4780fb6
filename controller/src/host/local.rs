//! The local host: this machine. The controller binary doubles as the agent
//! (`benchvm agent …`), so nothing has to be installed beside it.

use crate::error::{Error, Result};
use crate::host::{AgentJob, Host};
use crate::timings::Timings;

/// This machine: nothing to start or release.
#[derive(Debug, Clone, Copy)]
pub struct LocalHost;

#[async_trait::async_trait]
impl Host for LocalHost {
    async fn run_agent(&self, job: &AgentJob, _timings: &Timings) -> Result<()> {
        run_agent(job).await
    }
}

async fn run_agent(job: &AgentJob) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::infra("find the benchvm binary", e))?;
    let results = job.results.display().to_string();
    // stderr is inherited: the agent's progress lines reach the job log as they come.
    // kill_on_drop: a cancelled job must not leave the agent running.
    let status = tokio::process::Command::new(exe)
        .arg("agent")
        .args(job.compare_args(&results))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| Error::infra("start the agent", e))?;
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
