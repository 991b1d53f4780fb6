//! Where the agent runs (DESIGN §1 step 2). `local` runs it on this machine; `ssh` ships
//! the static agent to an existing machine. The Azure VM (started and deallocated per
//! run) plugs in as a further [`HostPlan`] variant, its deallocation in
//! [`HostPlan::teardown`]. Raw flags become a validated plan in one place
//! ([`HostPlan::from_flags`]); nothing downstream re-checks them.

pub mod bundle;
pub mod local;
pub mod ssh;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ssh::SshTarget;
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

/// Exactly one kind of host.
#[derive(Debug, clap::Args)]
#[group(id = "host", required = true, multiple = false)]
pub struct HostChoice {
    /// Run the agent on this machine.
    #[arg(long)]
    pub local: bool,
    /// Run the agent on an existing machine over SSH (see the --ssh-* flags).
    #[arg(long)]
    pub ssh: bool,
}

/// Choosing and reaching the host.
#[derive(Debug, clap::Args)]
pub struct HostFlags {
    #[command(flatten)]
    pub choice: HostChoice,
    /// Host name or address of the benchmark machine.
    #[arg(long)]
    pub ssh_host: Option<String>,
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    #[arg(long, default_value = "bench")]
    pub ssh_user: String,
    /// Private key file of the SSH user.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// The pinned host public key, "ssh-ed25519 AAAA…": an unknown or different key stops the run.
    #[arg(long)]
    pub ssh_host_key: Option<String>,
    /// The statically linked agent to upload [default: benchvm-agent beside this binary, or
    /// this checkout's musl release build].
    #[arg(long)]
    pub agent_binary: Option<PathBuf>,
    /// Minutes the remote comparison may take before it is killed.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_minutes: u64,
}

fn required<'a>(value: &'a Option<String>, flag: &str) -> Result<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::Usage(format!("{flag} is required with --ssh")))
}

/// The validated host.
#[derive(Debug, Clone)]
pub enum HostPlan {
    Local,
    Ssh(ssh::SshHost),
}

impl HostPlan {
    pub fn from_flags(f: &HostFlags) -> Result<Self> {
        if f.choice.local {
            return Ok(HostPlan::Local);
        }
        let key = f
            .ssh_key
            .clone()
            .ok_or_else(|| Error::Usage("--ssh-key is required with --ssh".into()))?;
        if !key.is_file() {
            return Err(Error::Usage(format!(
                "--ssh-key: {} is not a readable file",
                key.display()
            )));
        }
        let host_key = required(&f.ssh_host_key, "--ssh-host-key")?;
        crate::ssh::fingerprint(host_key)
            .map_err(|e| Error::Usage(format!("--ssh-host-key: {e}")))?;
        let target = SshTarget {
            host: required(&f.ssh_host, "--ssh-host")?.to_owned(),
            port: f.ssh_port,
            user: f.ssh_user.clone(),
            key,
            host_key: host_key.to_owned(),
            connect_timeout: Duration::from_secs(20),
            keepalive: Duration::from_secs(15),
        };
        let agent = match &f.agent_binary {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => return Err(Error::Usage(format!("--agent-binary: {} is not a file", p.display()))),
            None => default_agent().ok_or_else(|| {
                Error::Usage(
                    "--agent-binary: no benchvm-agent beside this binary; build the static agent with `cargo build --release --target x86_64-unknown-linux-musl -p benchvm-agent`".into(),
                )
            })?,
        };
        Ok(HostPlan::Ssh(ssh::SshHost {
            target,
            agent,
            timeout: Duration::from_secs(f.timeout_minutes * 60),
        }))
    }

    /// Gets the host ready (a VM would be started here).
    pub async fn prepare(&self, _timings: &Timings) -> Result<()> {
        match self {
            HostPlan::Local | HostPlan::Ssh(_) => Ok(()),
        }
    }

    pub async fn run_agent(&self, job: &AgentJob, timings: &Timings) -> Result<()> {
        match self {
            HostPlan::Local => local::run_agent(job).await,
            HostPlan::Ssh(s) => s.run_agent(job, timings).await,
        }
    }

    /// Releases the host on every path out; `wait: false` when a cancelled job has only
    /// seconds left.
    pub async fn teardown(&self, _wait: bool, _timings: &Timings) -> Result<()> {
        match self {
            HostPlan::Local | HostPlan::Ssh(_) => Ok(()),
        }
    }
}

/// `benchvm-agent` beside the running binary, or the musl release build of this
/// workspace when run from a checkout.
fn default_agent() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let beside = exe.with_file_name("benchvm-agent");
    if beside.is_file() {
        return Some(beside);
    }
    let target_dir = exe.parent()?.parent()?;
    let musl = target_dir.join("x86_64-unknown-linux-musl/release/benchvm-agent");
    musl.is_file().then_some(musl)
}

/// Single-quotes an argument for a remote POSIX shell.
pub fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(super::quote("a b"), "'a b'");
        assert_eq!(super::quote("it's"), "'it'\\''s'");
    }
}
