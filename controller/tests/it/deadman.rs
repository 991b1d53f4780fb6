//! The VM's dead-man switch (cloud-init/benchvm-deadman.sh) against the in-process fake of
//! the instance metadata endpoint and ARM, and the copy embedded in the cloud-config.

use std::path::{Path, PathBuf};

use crate::support::fake_arm::FakeArm;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cloud-init/benchvm-deadman.sh")
}

/// One tick of the switch. Root's state directory and the uptime it reads are the test's
/// (beside the run directory): the uptime is 100 s unless the test wrote another.
pub(crate) async fn run_switch(fake: &FakeArm, run_dir: &Path) -> std::process::Output {
    let uptime = run_dir.join(".uptime");
    if !uptime.exists() {
        std::fs::write(&uptime, "100.00 80.00\n").unwrap();
    }
    let child = tokio::process::Command::new("bash")
        .arg(script())
        .env("BENCHVM_RUN_DIR", run_dir)
        .env("BENCHVM_STATE_DIR", run_dir.join(".root-state"))
        .env("BENCHVM_UPTIME_FILE", &uptime)
        .env("BENCHVM_MAX_UPTIME", "18000")
        .env("BENCHVM_RETRY_DELAY", "1")
        .env("BENCHVM_IMDS", fake.base())
        .env("BENCHVM_ARM", fake.base())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(120), child)
        .await
        .expect("the switch finished within two minutes")
        .unwrap()
}

pub(crate) fn stale(path: &Path, ago: &str) {
    let ok = std::process::Command::new("touch")
        .args(["-d", ago])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn deallocations(fake: &FakeArm) -> Vec<crate::support::fake_arm::Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/deallocate?"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_run_is_killed_and_the_vm_deallocated_a_live_one_is_left_alone() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();

    // Not armed: nothing happens.
    let out = run_switch(&fake, run).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fake.requests().is_empty());

    // Armed with a fresh heartbeat: nothing happens.
    let agent = std::process::Command::new("setsid")
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::fs::write(run.join("agent.pid"), agent.id().to_string()).unwrap();
    std::fs::write(run.join("armed"), "600").unwrap();
    std::fs::write(run.join("heartbeat"), "").unwrap();
    assert!(run_switch(&fake, run).await.status.success());
    assert!(deallocations(&fake).is_empty());
    assert!(run.join("armed").exists());

    // Silent for 20 minutes: the agent's group is killed and the VM deallocated, once.
    let stale = std::process::Command::new("touch")
        .args(["-d", "20 minutes ago"])
        .arg(run.join("heartbeat"))
        .status()
        .unwrap();
    assert!(stale.success());
    let out = run_switch(&fake, run).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts = deallocations(&fake);
    assert_eq!(posts.len(), 1);
    assert!(posts[0].path.starts_with("/subscriptions/sub-1/resourceGroups/bench-rg/providers/Microsoft.Compute/virtualMachines/bench-vm/deallocate?api-version="));
    assert_eq!(
        posts[0].auth.as_deref(),
        Some("Bearer mi-token"),
        "the VM's managed identity"
    );
    let mut agent = agent;
    let status = agent.wait().unwrap();
    assert!(!status.success(), "the agent was killed");
    assert!(!run.join("armed").exists(), "disarmed after firing");

    // A second tick does not fire again.
    assert!(run_switch(&fake, run).await.status.success());
    assert_eq!(deallocations(&fake).len(), 1);
}

/// agent.pid is written by the bench user and read by root: a pid that is not the run's
/// agent is never signalled, and the VM is deallocated all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_pid_is_not_signalled_but_the_vm_is_still_deallocated() {
    for case in ["init", "recycled", "garbage"] {
        let fake = FakeArm::start("bench-vm", "running").await;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        std::fs::write(run.join("armed"), "600").unwrap();
        let stale = std::process::Command::new("touch")
            .args(["-d", "20 minutes ago"])
            .arg(run.join("heartbeat"))
            .status()
            .unwrap();
        assert!(stale.success());
        // The armed file is older than any process started now: a pid started after
        // arming is a recycled one.
        let old = std::process::Command::new("touch")
            .args(["-d", "5 minutes ago"])
            .arg(run.join("armed"))
            .status()
            .unwrap();
        assert!(old.success());
        let mut bystander = std::process::Command::new("setsid")
            .args(["sleep", "60"])
            .spawn()
            .unwrap();
        let pid = match case {
            "init" => "1".to_owned(),
            "recycled" => bystander.id().to_string(),
            _ => "12; rm -rf /".to_owned(),
        };
        std::fs::write(run.join("agent.pid"), pid).unwrap();
        let out = run_switch(&fake, run).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{case}: {stderr}");
        assert!(
            stderr.contains("refusing")
                || stderr.contains("not signalled")
                || stderr.contains("malformed"),
            "{case}: {stderr}"
        );
        assert_eq!(deallocations(&fake).len(), 1, "{case}: deallocated anyway");
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "{case}: the bystander is alive"
        );
        let _ = bystander.kill();
        let _ = bystander.wait();
    }
}

/// Issue 14: the run directory is the benchmark's to write. A FIFO in place of agent.pid
/// or armed (which hung the root script's read) and a link do not stop the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_link_in_the_run_directory_cannot_hang_or_steer_the_switch() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    std::fs::write(run.join("armed"), "600").unwrap();
    std::fs::write(run.join("heartbeat"), "").unwrap();
    stale(&run.join("heartbeat"), "20 minutes ago");
    let fifo = std::process::Command::new("mkfifo")
        .arg(run.join("agent.pid"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let out = run_switch(&fake, run).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("malformed agent.pid"), "{stderr}");
    assert_eq!(deallocations(&fake).len(), 1, "deallocated all the same");

    // armed as a FIFO, or as a link to root's files: not armed, nothing read, no hang.
    let fake = FakeArm::start("bench-vm", "running").await;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let fifo = std::process::Command::new("mkfifo")
        .arg(run.join("armed"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let out = run_switch(&fake, run).await;
    assert!(out.status.success());
    std::fs::remove_file(run.join("armed")).unwrap();
    std::os::unix::fs::symlink("/proc/uptime", run.join("armed")).unwrap();
    let out = run_switch(&fake, run).await;
    assert!(out.status.success());
    assert!(fake.requests().is_empty());
}

/// Issue 14: the switch disarmed before deallocating, so one IMDS outage ended every later
/// attempt. It stays armed until a deallocation was requested, counting attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_retried_every_tick_until_the_deallocation_is_requested() {
    // Every try of one tick (the first and curl's two retries) meets a 503.
    outage_is_retried("/metadata/identity/oauth2/token", 503, 3, vec![]).await;
}

/// Issue 14: ARM throttles (429, with Retry-After) or fails (500) the switch's deallocation
/// request through all of one tick's tries (the first and curl's three retries): the switch
/// stays armed, and the next tick's request goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_throttling_or_failing_the_deallocation_is_retried_the_next_tick() {
    outage_is_retried("/deallocate", 429, 4, vec![("Retry-After", "1".into())]).await;
    outage_is_retried("/deallocate", 500, 4, vec![]).await;
}

/// `tries` answers of `status` at `path`: the first tick fails and stays armed; the second
/// requests the deallocation and disarms.
async fn outage_is_retried(
    path: &'static str,
    status: u16,
    tries: usize,
    headers: Vec<(&'static str, String)>,
) {
    let fake = FakeArm::start("bench-vm", "running").await;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    std::fs::write(run.join("armed"), "600").unwrap();
    std::fs::write(run.join("heartbeat"), "").unwrap();
    stale(&run.join("heartbeat"), "20 minutes ago");
    for _ in 0..tries {
        fake.fault(crate::support::fake_arm::Fault {
            path_contains: path,
            status,
            headers: headers.clone(),
            body: "{}".into(),
        });
    }
    let out = run_switch(&fake, run).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{path} {status}: {stderr}");
    assert!(stderr.contains("attempt 1"), "{stderr}");
    // Refused requests are recorded too: for ARM's faults, one per try of the tick.
    let refused = if path == "/deallocate" { tries } else { 0 };
    assert_eq!(deallocations(&fake).len(), refused, "{path} {status}");
    assert_eq!(fake.state.lock().unwrap().power, "running");
    assert!(
        run.join("armed").exists(),
        "still armed after a failed attempt ({path} {status})"
    );

    let out = run_switch(&fake, run).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{path} {status}: {stderr}");
    assert!(stderr.contains("attempt 2"), "{stderr}");
    assert_eq!(deallocations(&fake).len(), refused + 1, "{path} {status}");
    assert_ne!(fake.state.lock().unwrap().power, "running");
    assert!(!run.join("armed").exists());
}

/// Issue 14: nothing covered boot → arming or a run's end → deallocation, and a benchmark
/// can keep the heartbeat fresh itself. A root-owned cap on uptime deallocates regardless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_up_past_the_hard_cap_is_deallocated_armed_or_not() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    std::fs::write(run.join(".uptime"), "17000.00 100.00\n").unwrap();
    assert!(run_switch(&fake, run).await.status.success());
    assert!(fake.requests().is_empty(), "under the cap");

    // Over it, with a heartbeat the benchmark keeps in the future: deallocated, once.
    std::fs::write(run.join(".uptime"), "18061.52 100.00\n").unwrap();
    std::fs::write(run.join("armed"), "600").unwrap();
    std::fs::write(run.join("heartbeat"), "").unwrap();
    stale(&run.join("heartbeat"), "next year");
    let out = run_switch(&fake, run).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("over the hard cap"), "{stderr}");
    assert_eq!(deallocations(&fake).len(), 1);
    let out = run_switch(&fake, run).await;
    assert!(out.status.success());
    assert_eq!(
        deallocations(&fake).len(),
        1,
        "not asked again within ten minutes"
    );
}

#[test]
fn the_cloud_config_embeds_the_same_script() {
    let config = crate::support::cloud::config();
    let file = |path: &str| crate::support::cloud::written(&config, path);
    assert_eq!(
        file("/usr/local/sbin/benchvm-deadman"),
        std::fs::read_to_string(script()).unwrap()
    );
    assert!(file("/etc/systemd/system/benchvm-deadman.service").contains("TimeoutStartSec="));
    let cap: u64 = file("/etc/benchvm/max-uptime-s").trim().parse().unwrap();
    assert!(
        cap >= (180 + 60) * 60,
        "the cap leaves room for a run and its lock wait"
    );
}
