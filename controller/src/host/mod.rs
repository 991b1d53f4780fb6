//! Where the agent runs (DESIGN §1 step 2). `local` runs it on this machine; the remote
//! hosts (an SSH machine, an Azure VM started and deallocated per run) plug in here as
//! further [`HostPlan`] variants, with their teardown in [`HostPlan::teardown`].

pub mod bundle;
pub mod local;

use std::path::PathBuf;

use crate::error::Result;
use crate::timings::Timings;

/// What the agent is asked to compare.
#[derive(Debug, Clone)]
pub struct AgentJob {
    pub repo: String,
    pub base: String,
    pub head: String,
    pub config: Option<PathBuf>,
    /// Where the results directory must end up on this machine.
    pub results: PathBuf,
    pub cache: Option<PathBuf>,
    pub seed: Option<u64>,
    pub rounds: Option<u32>,
}

impl AgentJob {
    /// The `compare` arguments for the agent, results directory given as `results`.
    pub fn compare_args(&self, results: &str) -> Vec<String> {
        let mut args = vec![
            "compare".to_owned(),
            "--repo".into(),
            self.repo.clone(),
            "--base".into(),
            self.base.clone(),
            "--head".into(),
            self.head.clone(),
            "--results".into(),
            results.to_owned(),
        ];
        if let Some(c) = &self.config {
            args.extend(["--config".into(), c.display().to_string()]);
        }
        if let Some(c) = &self.cache {
            args.extend(["--cache".into(), c.display().to_string()]);
        }
        if let Some(s) = self.seed {
            args.extend(["--seed".into(), s.to_string()]);
        }
        if let Some(r) = self.rounds {
            args.extend(["--rounds".into(), r.to_string()]);
        }
        args
    }
}

/// The validated host.
#[derive(Debug, Clone)]
pub enum HostPlan {
    Local,
}

impl HostPlan {
    /// Gets the host ready (a VM would be started here).
    pub async fn prepare(&self, _timings: &Timings) -> Result<()> {
        match self {
            HostPlan::Local => Ok(()),
        }
    }

    pub async fn run_agent(&self, job: &AgentJob, _timings: &Timings) -> Result<()> {
        match self {
            HostPlan::Local => local::run_agent(job).await,
        }
    }

    /// Releases the host on every path out; `wait: false` when a cancelled job has only
    /// seconds left.
    pub async fn teardown(&self, _wait: bool, _timings: &Timings) -> Result<()> {
        match self {
            HostPlan::Local => Ok(()),
        }
    }
}
