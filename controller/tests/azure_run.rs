//! `benchvm run --azure` end to end: an in-process fake ARM holds the VM's power state, a
//! real sshd on loopback plays the VM. The VM must be deallocated on every path out.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::agent::static_agent;
use support::fake_arm::FakeArm;
use support::sshd::{Sshd, whoami};
use support::tiny::tiny_repo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn benchvm(fake: &FakeArm, sshd: &Sshd, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchvm"));
    c.args(args)
        .args([
            "--azure-subscription",
            "sub-1",
            "--azure-resource-group",
            "bench-rg",
            "--azure-vm",
            "bench-vm",
        ])
        .args([
            "--azure-credential",
            "client-secret",
            "--azure-tenant-id",
            "t",
            "--azure-client-id",
            "c",
        ])
        .args([
            "--azure-arm-endpoint",
            &fake.url(),
            "--azure-authority-host",
            &fake.url(),
        ])
        .env("AZURE_CLIENT_SECRET", "s3cret");
    if args.first() == Some(&"run") {
        c.args([
            "--ssh-host",
            "127.0.0.1",
            "--ssh-port",
            &sshd.port.to_string(),
            "--ssh-user",
            &whoami(),
        ])
        .args([
            "--ssh-key",
            sshd.user_key().to_str().unwrap(),
            "--ssh-host-key",
            &sshd.host_key(),
        ])
        .args(["--agent-binary", static_agent().to_str().unwrap()]);
    }
    c
}

fn posts(fake: &FakeArm, op: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains(&format!("/{op}?")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_is_started_used_and_deallocated() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let results = tmp.path().join("results");
    let out = benchvm(
        &fake,
        &sshd,
        &[
            "run",
            "--azure",
            "--repo",
            repo.to_str().unwrap(),
            "--base",
            "main",
            "--head",
            "perf/slow",
        ],
    )
    .args([
        "--rounds",
        "2",
        "--results",
        results.to_str().unwrap(),
        "--markdown",
    ])
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    assert_eq!((posts(&fake, "start"), posts(&fake, "deallocate")), (1, 1));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    let span = |name: &str| {
        report["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    };
    assert_eq!(
        span("vm start").expect("vm start span")["cache"],
        "cold",
        "the VM was deallocated"
    );
    assert!(span("ssh ready").is_some() && span("vm deallocate").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_agent_still_deallocates_the_vm() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let out = benchvm(
        &fake,
        &sshd,
        &[
            "run",
            "--azure",
            "--repo",
            repo.to_str().unwrap(),
            "--base",
            "main",
            "--head",
            "no-such-branch",
        ],
    )
    .args(["--results", tmp.path().join("r").to_str().unwrap()])
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-branch"), "{stderr}");
    assert_eq!(
        fake.state.lock().unwrap().power,
        "deallocated",
        "deallocated after the failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_requests_the_deallocation_at_once() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let mut child = benchvm(
        &fake,
        &sshd,
        &[
            "run",
            "--azure",
            "--repo",
            repo.to_str().unwrap(),
            "--base",
            "main",
            "--head",
            "perf/slow",
        ],
    )
    .args([
        "--rounds",
        "500",
        "--results",
        tmp.path().join("r").to_str().unwrap(),
    ])
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = false;
    for _ in 0..400 {
        match tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await {
            Ok(Ok(Some(l))) if l.contains("round 1/500 done") => {
                seen = true;
                break;
            }
            Ok(Ok(Some(_))) => {}
            _ => break,
        }
    }
    assert!(seen, "the remote run started");
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits promptly")
        .unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        posts(&fake, "deallocate"),
        1,
        "deallocation requested on cancel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_is_idempotent() {
    let (fake, sshd) = (FakeArm::start("bench-vm", "running").await, Sshd::start());
    for _ in 0..2 {
        let out = benchvm(&fake, &sshd, &["cleanup"]).output().await.unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    assert_eq!(
        posts(&fake, "deallocate"),
        1,
        "the second cleanup found it deallocated"
    );
}
