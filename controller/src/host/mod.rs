//! Where the agent runs (ARCHITECTURE §1 step 2). `local` runs it on this machine; `ssh` ships
//! the static agent to an existing machine; `azure` starts a VM, uses it as an ssh host
//! and deallocates it in its teardown, which [`run_on`] runs on every path out. Raw flags
//! become a validated [`Host`] in one place ([`from_flags`]); nothing downstream re-checks
//! them.

pub mod azure;
pub mod bundle;
pub mod local;
pub mod ssh;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::azure_vm::{AzureOptions, AzureVm, CredentialConfig, VmRef};
use crate::error::{Error, Result};
use crate::ssh_transport::SshTarget;
use benchvm_agent::job::Job;
use benchvm_agent::spans::Timeline;

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
    /// Start an Azure VM for the run, use it over SSH, deallocate it after (--azure-*, --ssh-*).
    #[arg(long)]
    pub azure: bool,
}

/// Reaching the benchmark machine over SSH (`--ssh`, and the VM of `--azure`): declared
/// once for `run`, `calibrate` and the Action. The key is apart: a file for the command
/// line, the key itself or a file for the Action.
#[derive(Debug, Clone, clap::Args)]
pub struct SshFlags {
    /// Host name or address of the benchmark machine (ssh and azure: give the VM a static address).
    #[arg(long)]
    pub ssh_host: Option<String>,
    /// SSH port of the benchmark machine.
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// SSH user on the benchmark machine.
    #[arg(long, default_value = "bench")]
    pub ssh_user: String,
    /// The pinned host public key, `ssh-ed25519 AAAA…`: a different key stops the run.
    #[arg(long)]
    pub ssh_host_key: Option<String>,
}

/// Choosing and reaching the host.
#[derive(Debug, clap::Args)]
pub struct HostFlags {
    #[command(flatten)]
    pub choice: HostChoice,
    #[command(flatten)]
    pub ssh: SshFlags,
    /// Private key file of the SSH user.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// The statically linked agent to upload [default: benchvm-agent beside this binary, or
    /// this checkout's musl release build].
    #[arg(long)]
    pub agent_binary: Option<PathBuf>,
    /// Minutes the comparison may take before its processes are killed (fractions allowed).
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MINUTES)]
    pub timeout_minutes: f64,
    /// Seconds between SSH keepalives; a host silent for two intervals is a lost connection.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ssh_keepalive_secs: u64,
    /// --azure: the directory on the VM where its dead-man switch looks for the run's
    /// heartbeat (`BENCHVM_RUN_DIR` of cloud-init/benchvm-deadman.sh).
    #[arg(long, default_value = DEAD_MAN_DIR)]
    pub dead_man_dir: String,
    #[command(flatten)]
    pub azure_flags: AzureFlags,
}

/// The VM and how to authenticate (for `run --azure` and `cleanup`).
#[derive(Debug, Clone, clap::Args)]
pub struct AzureFlags {
    /// Azure subscription id of the benchmark VM.
    #[arg(long)]
    pub azure_subscription: Option<String>,
    /// Resource group of the benchmark VM.
    #[arg(long)]
    pub azure_resource_group: Option<String>,
    /// Name of the benchmark VM (it stays deallocated between runs).
    #[arg(long)]
    pub azure_vm: Option<String>,
    /// github-oidc (recommended: no stored secret; needs `id-token: write`), client-secret
    /// (reads AZURE_CLIENT_SECRET) or cli (the Azure CLI's login).
    #[arg(long, value_enum, default_value_t = CredentialKind::GithubOidc)]
    pub azure_credential: CredentialKind,
    /// Microsoft Entra tenant id (github-oidc, client-secret).
    #[arg(long)]
    pub azure_tenant_id: Option<String>,
    /// Client id of the app registration or managed identity (github-oidc, client-secret).
    #[arg(long)]
    pub azure_client_id: Option<String>,
    /// Azure Resource Manager endpoint (sovereign clouds).
    #[arg(long, default_value = "https://management.azure.com")]
    pub azure_arm_endpoint: String,
    /// Microsoft Entra authority.
    #[arg(long, default_value = "https://login.microsoftonline.com")]
    pub azure_authority_host: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialKind {
    GithubOidc,
    ClientSecret,
    Cli,
}

fn required<'a>(value: &'a Option<String>, flag: &str, with: &str) -> Result<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::Usage(format!("{flag} is required with {with}")))
}

impl AzureFlags {
    /// The validated VM client.
    pub fn vm(&self) -> Result<AzureVm> {
        let vm = VmRef {
            subscription: required(&self.azure_subscription, "--azure-subscription", "--azure")?
                .to_owned(),
            resource_group: required(
                &self.azure_resource_group,
                "--azure-resource-group",
                "--azure",
            )?
            .to_owned(),
            name: required(&self.azure_vm, "--azure-vm", "--azure")?.to_owned(),
        };
        let ids = |with: &str| -> Result<(String, String)> {
            Ok((
                required(&self.azure_tenant_id, "--azure-tenant-id", with)?.to_owned(),
                required(&self.azure_client_id, "--azure-client-id", with)?.to_owned(),
            ))
        };
        let credential = match self.azure_credential {
            CredentialKind::GithubOidc => {
                let (tenant_id, client_id) = ids("--azure-credential github-oidc")?;
                let env = |k: &str| {
                    std::env::var(k).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                        Error::Usage(format!(
                            "--azure-credential github-oidc needs the job's OIDC token ({k} is not set): give the workflow `permissions: id-token: write` (pull requests from forks never get one)"
                        ))
                    })
                };
                CredentialConfig::GithubOidc {
                    tenant_id,
                    client_id,
                    request_url: env("ACTIONS_ID_TOKEN_REQUEST_URL")?,
                    request_token: env("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?,
                }
            }
            CredentialKind::ClientSecret => {
                let (tenant_id, client_id) = ids("--azure-credential client-secret")?;
                let secret = std::env::var("AZURE_CLIENT_SECRET").ok().filter(|s| !s.is_empty()).ok_or_else(|| {
                    Error::Usage("--azure-credential client-secret reads AZURE_CLIENT_SECRET, which is not set".into())
                })?;
                CredentialConfig::ClientSecret {
                    tenant_id,
                    client_id,
                    secret,
                }
            }
            CredentialKind::Cli => CredentialConfig::AzureCli,
        };
        let url = |flag: &str, v: &str| {
            url::Url::parse(v).map_err(|e| Error::Usage(format!("{flag}: {v:?} is not a URL: {e}")))
        };
        let options = AzureOptions {
            arm_endpoint: url("--azure-arm-endpoint", &self.azure_arm_endpoint)?,
            authority_host: url("--azure-authority-host", &self.azure_authority_host)?,
            ..AzureOptions::default()
        };
        AzureVm::new(vm, credential, options).map_err(|e| Error::Usage(e.to_string()))
    }
}

/// One kind of machine the agent runs on. The controller drives every host the same
/// way ([`run_on`]): `prepare`, then `run_agent`, then `teardown` on every path out.
#[async_trait::async_trait]
pub trait Host: Send + Sync + std::fmt::Debug {
    /// Gets the host ready (an Azure VM is started and waited for).
    async fn prepare(&self, _timeline: &Timeline) -> Result<()> {
        Ok(())
    }

    /// Runs the comparison; the results directory ends up at `job.results`.
    async fn run_agent(&self, job: &Job, timeline: &Timeline) -> Result<()>;

    /// Releases the host; `wait: false` when a cancelled job has only seconds left.
    async fn teardown(&self, _wait: bool, _timeline: &Timeline) -> Result<()> {
        Ok(())
    }

    /// Whether the teardown left the host running for another run that uses it (an Azure
    /// VM another controller's agent still holds a lease on).
    fn left_to_another_run(&self) -> bool {
        false
    }
}

/// `--timeout-minutes` when not given (and the demo's limit).
pub const DEFAULT_TIMEOUT_MINUTES: f64 = 180.0;

/// Where cloud-init's dead-man switch looks for a run's heartbeat on the VM.
pub const DEAD_MAN_DIR: &str = "/run/benchvm";

/// The validated host, from the flags in one place.
pub fn from_flags(f: &HostFlags) -> Result<Arc<dyn Host>> {
    // At most a week: more is surely a slip, and would not fit a Duration.
    if !(f.timeout_minutes > 0.0 && f.timeout_minutes <= 7.0 * 24.0 * 60.0) {
        return Err(Error::Usage(format!(
            "--timeout-minutes: {} is not a number of minutes between 0 and 10080 (a week)",
            f.timeout_minutes
        )));
    }
    let timeout = Duration::from_secs_f64(f.timeout_minutes * 60.0);
    if f.choice.local {
        return Ok(Arc::new(local::LocalHost { timeout }));
    }
    let with = if f.choice.azure { "--azure" } else { "--ssh" };
    let key = f
        .ssh_key
        .clone()
        .ok_or_else(|| Error::Usage(format!("--ssh-key is required with {with}")))?;
    if !key.is_file() {
        return Err(Error::Usage(format!(
            "--ssh-key: {} is not a readable file",
            key.display()
        )));
    }
    let host_key = required(&f.ssh.ssh_host_key, "--ssh-host-key", with)?;
    crate::ssh_transport::fingerprint(host_key)
        .map_err(|e| Error::Usage(format!("--ssh-host-key: {e}")))?;
    let target = SshTarget {
        host: required(&f.ssh.ssh_host, "--ssh-host", with)?.to_owned(),
        port: f.ssh.ssh_port,
        user: f.ssh.ssh_user.clone(),
        key,
        host_key: host_key.to_owned(),
        connect_timeout: Duration::from_secs(20),
        keepalive: Duration::from_secs(f.ssh_keepalive_secs),
    };
    let agent = match &f.agent_binary {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => {
            return Err(Error::Usage(format!(
                "--agent-binary: {} is not a file",
                p.display()
            )));
        }
        None => default_agent().ok_or_else(|| {
            Error::Usage(
                "--agent-binary: no benchvm-agent beside this binary; build the static agent with `cargo build --release --target x86_64-unknown-linux-musl -p benchvm-agent`".into(),
            )
        })?,
    };
    if f.choice.azure && !f.dead_man_dir.starts_with('/') {
        return Err(Error::Usage(format!(
            "--dead-man-dir: {} is not an absolute path on the host",
            f.dead_man_dir
        )));
    }
    let ssh = ssh::SshHost {
        target,
        agent,
        timeout,
        dead_man: f.choice.azure.then(|| f.dead_man_dir.clone()),
        run_id: ssh::new_run_id(),
    };
    if f.choice.azure {
        return Ok(Arc::new(azure::AzureHost {
            vm: Arc::new(f.azure_flags.vm()?),
            ssh,
            start_deadline: Duration::from_secs(10 * 60),
            left_to_another_run: Default::default(),
        }));
    }
    Ok(Arc::new(ssh))
}

/// In a GitHub Actions job (`GITHUB_ACTIONS=true`), workflow commands are off from `start` to
/// drop (`::stop-commands::TOKEN` … `::TOKEN::`, the runner's documented switch): a line the
/// agent forwards from the host, however it got there, cannot be `::error::`,
/// `::add-mask::` or `::set-output::`. The token is unguessable by the host.
struct WorkflowCommandsOff {
    token: Option<String>,
}

impl WorkflowCommandsOff {
    fn start() -> Self {
        Self::start_if(std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true"))
    }

    fn start_if(in_actions: bool) -> Self {
        let token = in_actions.then(|| {
            use sha2::Digest;
            let seed = format!(
                "{:?} {} {:p}",
                std::time::SystemTime::now(),
                std::process::id(),
                &in_actions
            );
            format!("benchvm-{:x}", sha2::Sha256::digest(seed.as_bytes()))
        });
        if let Some(t) = &token {
            eprintln!("::stop-commands::{t}");
        }
        Self { token }
    }
}

impl Drop for WorkflowCommandsOff {
    fn drop(&mut self) {
        if let Some(t) = &self.token {
            eprintln!("::{t}::");
        }
    }
}

/// A job that ran to its end on its host.
#[derive(Debug)]
pub struct Ran {
    /// When the agent's clock started, in seconds since the run's timeline began.
    pub agent_offset: f64,
    /// Why the host could not be torn down (an Azure VM that may still be running). The
    /// job's results are good all the same: they are written and shown, and then this is
    /// the run's error.
    pub teardown: Option<Error>,
}

/// Runs `job` on `host` and tears the host down on every path out: success, agent
/// failure, a panic in the job (it runs in a task of its own, so a panic arrives here
/// as a `JoinError`), and SIGINT/SIGTERM of a cancelled job (then the teardown is only
/// started: GitHub's grace period is short). A job that failed is the error, with the
/// teardown's error printed beside it; a job that ran is [`Ran`], whatever the teardown did.
pub async fn run_on(host: Arc<dyn Host>, job: &Job, timeline: &Timeline) -> Result<Ran> {
    // What the agent and the benchmark host print reaches the job log, and none of it may
    // act as a workflow command.
    let _inert = WorkflowCommandsOff::start();
    let mut work = {
        let (host, job, timeline) = (host.clone(), job.clone(), timeline.clone());
        tokio::spawn(async move {
            host.prepare(&timeline).await?;
            let started = std::time::Instant::now();
            host.run_agent(&job, &timeline).await?;
            Ok::<_, Error>(timeline.offset(started))
        })
    };
    let outcome = tokio::select! {
        joined = &mut work => joined.unwrap_or_else(|e| {
            Err(Error::infra("run the job", if e.is_panic() { "it panicked" } else { "it was cancelled" }))
        }),
        signal = crate::signals::shutdown() => {
            eprintln!("benchvm: {signal} received, stopping");
            // Dropping the job stops a local agent (SIGTERM: it kills its benchmark too).
            // Awaiting the aborted task makes sure it was dropped before the process exits.
            work.abort();
            let _ = tokio::time::timeout(Duration::from_secs(5), work).await;
            // Start the teardown at once and do not wait for it: the grace period is short.
            if let Err(e) = host.teardown(false, timeline).await {
                eprintln!("error: {e}");
            }
            return Err(Error::Cancelled { signal });
        }
    };
    let teardown = host.teardown(true, timeline).await;
    match (outcome, teardown) {
        (Ok(agent_offset), teardown) => Ok(Ran {
            agent_offset,
            teardown: teardown.err(),
        }),
        (Err(e), Ok(())) => Err(e),
        // Both matter: the job's error is the answer, the VM left running is money.
        (Err(e), Err(t)) => {
            eprintln!("error: {t}");
            Err(e)
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

/// Where the agent whose SHA-256 is `sha` (hex) lives on a host whose home is `home`:
/// once per version, its name carries its hash. cloud-init's AppArmor profile attaches to
/// these paths (cloud-init/benchvm.yaml).
pub fn remote_agent_path(home: &str, sha: &str) -> String {
    format!("{home}/.benchvm/bin/benchvm-agent-{}", &sha[..16])
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(super::quote("a b"), "'a b'");
        assert_eq!(super::quote("it's"), "'it'\\''s'");
    }
}
