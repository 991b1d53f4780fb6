//! The benchmark VM's lifecycle on Azure: start it and wait until it runs, deallocate it
//! (a guest power-off alone leaves a VM "stopped" and still billed).
//!
//! Built on azure_mgmt_compute 0.21 with azure_core 0.21. Two facts of that generation
//! shape this module: `start` and `deallocate` only send the request (`.send()` returns
//! the 202; nothing awaits the long-running operation), so the poller here watches the
//! instance view's `PowerState/…` code until it reaches the target or a deadline; and
//! azure_core's retry policy already retries 408, 429, 500, 502, 503 and 504, honouring
//! `Retry-After` on 429 and 503, so it is configured with bounds rather than rewritten.

pub mod credential;

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::auth::TokenCredential;
use azure_core::{ExponentialRetryOptions, RetryOptions, Url};

use credential::{Assertion, EntraCredential};

/// Which VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRef {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

/// The VM's power state, from the instance view's `PowerState/<state>` status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerState {
    Running,
    Starting,
    Stopped,
    Stopping,
    Deallocated,
    Deallocating,
    Unknown(String),
}

impl PowerState {
    fn from_code(code: &str) -> Self {
        match code.strip_prefix("PowerState/").unwrap_or(code) {
            "running" => PowerState::Running,
            "starting" => PowerState::Starting,
            "stopped" => PowerState::Stopped,
            "stopping" => PowerState::Stopping,
            "deallocated" => PowerState::Deallocated,
            "deallocating" => PowerState::Deallocating,
            other => PowerState::Unknown(other.to_owned()),
        }
    }
}

/// How to authenticate.
#[derive(Debug, Clone)]
pub enum CredentialConfig {
    /// GitHub Actions OIDC: the job's ID-token request URL and token
    /// (`ACTIONS_ID_TOKEN_REQUEST_URL`/`_TOKEN`, present with `permissions: id-token: write`).
    GithubOidc {
        tenant_id: String,
        client_id: String,
        request_url: String,
        request_token: String,
    },
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: String,
    },
    /// The Azure CLI's login, for local use.
    AzureCli,
}

#[derive(Debug, Clone)]
pub struct AzureOptions {
    pub arm_endpoint: Url,
    pub authority_host: Url,
    pub poll_interval: Duration,
    pub max_retries: u32,
    /// How long one HTTP request to ARM or Entra may take, connecting included: a request
    /// into a network that drops everything fails then (and is retried like any I/O
    /// error) instead of waiting for ever.
    pub request_timeout: Duration,
    /// How long getting one Azure token may take, whatever the credential
    /// ([`credential::Bounded`]; `az` has no deadline of its own).
    pub token_timeout: Duration,
}

impl Default for AzureOptions {
    fn default() -> Self {
        Self {
            arm_endpoint: Url::parse("https://management.azure.com").expect("valid URL"),
            authority_host: Url::parse("https://login.microsoftonline.com").expect("valid URL"),
            poll_interval: Duration::from_secs(5),
            max_retries: 6,
            request_timeout: Duration::from_secs(30),
            token_timeout: Duration::from_secs(120),
        }
    }
}

/// azure_core's HTTP client (reqwest, as azure_core builds it: no idle connections kept,
/// hyper#2312), with `timeout` on every request and on connecting.
fn http_client(timeout: Duration) -> Result<Arc<dyn azure_core::HttpClient>, AzureError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .build()
        .map_err(|e| AzureError::Setup(format!("the HTTP client: {e}")))?;
    Ok(Arc::new(client))
}

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error("failed to {action} VM {vm}: {source}{reason}")]
    Api {
        action: &'static str,
        vm: String,
        /// ARM's error code and message, when it sent them: ` (code: message)`.
        reason: String,
        #[source]
        source: Box<azure_core::Error>,
    },
    #[error("VM {vm} did not reach {target} within {secs} s (last state: {last:?})")]
    Deadline {
        vm: String,
        target: &'static str,
        secs: u64,
        last: PowerState,
    },
    #[error("Azure could not {action} VM {vm}: {detail}")]
    Failed {
        action: &'static str,
        vm: String,
        detail: String,
    },
    #[error("failed to set up the Azure client: {0}")]
    Setup(String),
}

/// One VM and an authenticated compute client.
#[derive(Clone)]
pub struct AzureVm {
    vm: VmRef,
    client: azure_mgmt_compute::package_2024_07_01::Client,
    poll: Duration,
}

impl std::fmt::Debug for AzureVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureVm")
            .field("vm", &self.vm)
            .finish_non_exhaustive()
    }
}

impl AzureVm {
    pub fn new(
        vm: VmRef,
        credential: CredentialConfig,
        options: AzureOptions,
    ) -> Result<Self, AzureError> {
        let http = http_client(options.request_timeout)?;
        let credential: Arc<dyn TokenCredential> = match credential {
            CredentialConfig::GithubOidc {
                tenant_id,
                client_id,
                request_url,
                request_token,
            } => {
                let assertion = Assertion::GithubOidc {
                    request_url,
                    request_token,
                };
                Arc::new(EntraCredential::new(
                    http.clone(),
                    options.authority_host.clone(),
                    tenant_id,
                    client_id,
                    assertion,
                ))
            }
            CredentialConfig::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => Arc::new(EntraCredential::new(
                http.clone(),
                options.authority_host.clone(),
                tenant_id,
                client_id,
                Assertion::Secret(secret),
            )),
            CredentialConfig::AzureCli => Arc::new(azure_identity::AzureCliCredential::new()),
        };
        let credential: Arc<dyn TokenCredential> =
            Arc::new(credential::Bounded::new(credential, options.token_timeout));
        // The token scope follows the ARM endpoint (sovereign clouds, test fakes).
        let scope = format!(
            "{}/.default",
            options.arm_endpoint.as_str().trim_end_matches('/')
        );
        let retry = RetryOptions::exponential(
            ExponentialRetryOptions::default()
                .max_retries(options.max_retries)
                .initial_delay(Duration::from_millis(500))
                .max_delay(Duration::from_secs(30))
                .max_total_elapsed(Duration::from_secs(300)),
        );
        let client = azure_mgmt_compute::package_2024_07_01::Client::builder(credential)
            .endpoint(options.arm_endpoint.clone())
            .scopes(&[scope.as_str()])
            .retry(retry)
            .transport(azure_core::TransportOptions::new(http))
            .build()
            .map_err(|e| AzureError::Setup(e.to_string()))?;
        Ok(Self {
            vm,
            client,
            poll: options.poll_interval,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} (resource group {})",
            self.vm.name, self.vm.resource_group
        )
    }

    fn api(&self, action: &'static str) -> impl FnOnce(azure_core::Error) -> AzureError + '_ {
        move |source| {
            let reason = source
                .as_http_error()
                .and_then(|http| {
                    let code = http.error_code()?;
                    Some(match http.error_message() {
                        Some(message) => format!(" ({code}: {message})"),
                        None => format!(" ({code})"),
                    })
                })
                .unwrap_or_default();
            AzureError::Api {
                action,
                vm: self.vm.name.clone(),
                reason,
                source: Box::new(source),
            }
        }
    }

    pub async fn power_state(&self) -> Result<PowerState, AzureError> {
        Ok(self.instance_state().await?.0)
    }

    /// The power state, and the provisioning failure the instance view reports, if any
    /// (an allocation failure ends a start this way: the VM falls back to deallocated).
    async fn instance_state(&self) -> Result<(PowerState, Option<String>), AzureError> {
        let view = self
            .client
            .virtual_machines_client()
            .instance_view(
                &self.vm.resource_group,
                &self.vm.name,
                &self.vm.subscription,
            )
            .send()
            .await
            .map_err(self.api("read the power state of"))?
            .into_body()
            .await
            .map_err(self.api("read the power state of"))?;
        let power = view
            .statuses
            .iter()
            .filter_map(|s| s.code.as_deref())
            .find(|c| c.starts_with("PowerState/"))
            .map_or(
                PowerState::Unknown("none reported".into()),
                PowerState::from_code,
            );
        let failure = view.statuses.iter().find_map(|s| {
            let code = s
                .code
                .as_deref()?
                .strip_prefix("ProvisioningState/failed")?;
            let code = code.trim_start_matches('/');
            let message = s.message.as_deref().or(s.display_status.as_deref());
            Some(match message {
                Some(m) => format!("{code}: {m}"),
                None => code.to_owned(),
            })
        });
        Ok((power, failure))
    }

    /// Starts the VM and waits until it runs; returns whether it was already running.
    pub async fn start(&self, deadline: Duration) -> Result<bool, AzureError> {
        if self.power_state().await? == PowerState::Running {
            return Ok(true);
        }
        self.client
            .virtual_machines_client()
            .start(
                &self.vm.resource_group,
                &self.vm.name,
                &self.vm.subscription,
            )
            .send()
            .await
            .map_err(self.api("start"))?;
        self.wait_for(PowerState::Running, "PowerState/running", "start", deadline)
            .await?;
        Ok(false)
    }

    /// Deallocates the VM; with `wait: false` returns once the request is accepted.
    /// Deallocating a deallocated VM is success. A power state that cannot be read (a role
    /// that may deallocate but not read, an outage of reads) does not stop the request:
    /// the VM bills until it is sent.
    pub async fn deallocate(&self, wait: bool, deadline: Duration) -> Result<(), AzureError> {
        if matches!(self.power_state().await, Ok(PowerState::Deallocated)) {
            return Ok(());
        }
        self.client
            .virtual_machines_client()
            .deallocate(
                &self.vm.resource_group,
                &self.vm.name,
                &self.vm.subscription,
            )
            .send()
            .await
            .map_err(self.api("deallocate"))?;
        if wait {
            self.wait_for(
                PowerState::Deallocated,
                "PowerState/deallocated",
                "deallocate",
                deadline,
            )
            .await?;
        }
        Ok(())
    }

    /// Polls until the VM reaches `target`. A provisioning failure reported once the VM
    /// has left its transition (Azure gave up) ends the wait at once, with Azure's reason.
    async fn wait_for(
        &self,
        target: PowerState,
        name: &'static str,
        action: &'static str,
        deadline: Duration,
    ) -> Result<(), AzureError> {
        let start = Instant::now();
        loop {
            let (state, failure) = self.instance_state().await?;
            if state == target {
                return Ok(());
            }
            let settled = !matches!(
                state,
                PowerState::Starting | PowerState::Stopping | PowerState::Deallocating
            );
            if let (true, Some(detail)) = (settled, failure) {
                return Err(AzureError::Failed {
                    action,
                    vm: self.vm.name.clone(),
                    detail,
                });
            }
            if start.elapsed() >= deadline {
                return Err(AzureError::Deadline {
                    vm: self.vm.name.clone(),
                    target: name,
                    secs: deadline.as_secs(),
                    last: state,
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
