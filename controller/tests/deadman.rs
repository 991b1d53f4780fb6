//! The VM's dead-man switch (cloud-init/benchvm-deadman.sh) against the in-process fake of
//! the instance metadata endpoint and ARM, and the copy embedded in the cloud-config.

mod support;

use std::path::{Path, PathBuf};

use support::fake_arm::FakeArm;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cloud-init/benchvm-deadman.sh")
}

async fn run_switch(fake: &FakeArm, run_dir: &Path) -> std::process::Output {
    tokio::process::Command::new("bash")
        .arg(script())
        .env("BENCHVM_RUN_DIR", run_dir)
        .env("BENCHVM_IMDS", fake.base())
        .env("BENCHVM_ARM", fake.base())
        .output()
        .await
        .unwrap()
}

fn deallocations(fake: &FakeArm) -> Vec<support::fake_arm::Recorded> {
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

#[test]
fn the_cloud_config_embeds_the_same_script() {
    let yaml = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cloud-init/benchvm.yaml"),
    )
    .unwrap();
    let config: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let embedded = config["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/local/sbin/benchvm-deadman")
        .expect("the switch is installed by cloud-init")["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(embedded, std::fs::read_to_string(script()).unwrap());
}
