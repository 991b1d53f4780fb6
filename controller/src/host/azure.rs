//! The azure host: a dedicated VM started for the run (`PowerState/running`, then SSH
//! answering) and deallocated after it; in between it is an ssh host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::azure_vm::AzureVm;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::host::ssh::SshHost;
use benchvm_agent::job::Job;
use benchvm_agent::spans::{Cache, Timeline};

#[derive(Debug, Clone)]
pub struct AzureHost {
    pub vm: Arc<AzureVm>,
    pub ssh: SshHost,
    /// Bounds starting the VM, and then waiting for SSH.
    pub start_deadline: Duration,
    /// Set when the teardown left the VM running for another run.
    pub left_to_another_run: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Host for AzureHost {
    async fn prepare(&self, timeline: &Timeline) -> Result<()> {
        let t = Instant::now();
        let already_running = self
            .vm
            .start(self.start_deadline)
            .await
            .map_err(|e| Error::caused("start the benchmark VM", e))?;
        // A VM that was already running is the warm case: no boot, caches in memory.
        timeline.record("vm start", t, Some(Cache::from_warm(already_running)));
        let t = Instant::now();
        self.ssh.wait_ready(self.start_deadline).await?;
        timeline.record("ssh ready", t, None);
        Ok(())
    }

    async fn run_agent(&self, job: &Job, timeline: &Timeline) -> Result<()> {
        self.ssh.run_agent(job, timeline).await
    }

    /// Deallocates the VM, unless another run's agent holds its lease on the VM (running,
    /// or waiting for the host): that run's controller deallocates it when it ends, and its
    /// dead-man switch covers a controller that vanished. Whatever cannot be checked (no
    /// answer over SSH, a cancelled job with seconds left) is deallocated.
    async fn teardown(&self, wait: bool, timeline: &Timeline) -> Result<()> {
        if wait && self.ssh.another_run_holds_the_host().await == Some(true) {
            eprintln!(
                "benchvm: another run is using the VM {}: it is left running, and that run deallocates it when it ends",
                self.vm.describe()
            );
            timeline.record("vm left to another run", Instant::now(), None);
            self.left_to_another_run.store(true, Ordering::SeqCst);
            return Ok(());
        }
        deallocate(&self.vm, wait, timeline).await
    }

    fn left_to_another_run(&self) -> bool {
        self.left_to_another_run.load(Ordering::SeqCst)
    }
}

/// Deallocates the VM; `wait: false` only has the request accepted (a cancelled job has
/// seconds, and Azure finishes the operation without us).
pub async fn deallocate(vm: &AzureVm, wait: bool, timeline: &Timeline) -> Result<()> {
    let t = Instant::now();
    let r = vm
        .deallocate(wait, Duration::from_secs(15 * 60))
        .await
        .map_err(|e| Error::caused("deallocate the benchmark VM", e));
    timeline.record(
        if wait {
            "vm deallocate"
        } else {
            "vm deallocate (requested)"
        },
        t,
        None,
    );
    r
}
