//! Where the agent runs. One trait, one backend per kind of host (DESIGN §1 step 2):
//! `local` runs it on this machine; `ssh` and `azure` ship it to another.

pub mod local;

use std::path::PathBuf;

use crate::error::Result;

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

/// A machine the agent can run on.
pub trait Host {
    /// Runs the comparison, streaming the agent's progress to stderr; on success the
    /// results directory (with `report.json`) is at `job.results`.
    fn run_agent(&mut self, job: &AgentJob) -> Result<()>;

    /// Releases the host (deallocates a VM). Must be safe to call more than once.
    fn teardown(&mut self) -> Result<()>;
}
