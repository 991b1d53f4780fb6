//! The local host: this machine. The controller binary doubles as the agent
//! (`benchvm agent …`), so nothing has to be installed beside it.

use std::process::Command;

use crate::error::{Error, Result};
use crate::host::{AgentJob, Host};

#[derive(Debug, Default)]
pub struct LocalHost;

impl Host for LocalHost {
    fn run_agent(&mut self, job: &AgentJob) -> Result<()> {
        let exe =
            std::env::current_exe().map_err(|e| Error::infra("find the benchvm binary", e))?;
        let results = job.results.display().to_string();
        // stderr is inherited: the agent's progress lines reach the job log as they come.
        let status = Command::new(exe)
            .arg("agent")
            .args(job.compare_args(&results))
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::infra("start the agent", e))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => Err(Error::Agent { code }),
            None => Err(Error::infra("run the agent", "killed by a signal")),
        }
    }

    fn teardown(&mut self) -> Result<()> {
        Ok(())
    }
}
