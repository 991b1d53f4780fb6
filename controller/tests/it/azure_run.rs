//! `benchvm run --azure` end to end: an in-process fake ARM holds the VM's power state, a
//! real sshd on loopback plays the VM. The VM must be deallocated on every path out.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::agent::static_agent;
use crate::support::fake_arm::FakeArm;
use crate::support::relay::Relay;
use crate::support::sshd::{Sshd, whoami};
use crate::support::tiny::tiny_repo;
use benchvm::azure_vm::{AzureOptions, AzureVm, CredentialConfig, VmRef};
use benchvm::error::Result as BenchResult;
use benchvm::host::Host;
use benchvm_agent::job::Job;
use benchvm_agent::spans::Timeline;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// `run --azure --repo REPO --base main --head HEAD`.
fn azure_run<'a>(repo: &'a std::path::Path, head: &'a str) -> [&'a str; 8] {
    let repo = repo.to_str().unwrap();
    [
        "run", "--azure", "--repo", repo, "--base", "main", "--head", head,
    ]
}

fn benchvm(fake: &FakeArm, sshd: &Sshd, args: &[&str]) -> Command {
    benchvm_at(fake, sshd, sshd.port, args)
}

/// `benchvm`, reaching the host's sshd at `port` (a relay in front of it, say).
fn benchvm_at(fake: &FakeArm, sshd: &Sshd, port: u16, args: &[&str]) -> Command {
    benchvm_with_key(fake, port, &sshd.user_key(), &sshd.host_key(), args)
}

/// `benchvm`, logging in with the user key `key` to a host whose key is pinned to `pinned`.
fn benchvm_with_key(
    fake: &FakeArm,
    port: u16,
    key: &std::path::Path,
    pinned: &str,
    args: &[&str],
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchvm"));
    // A test that fails before it ends the controller does not leave it holding the host.
    c.kill_on_drop(true);
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
            &port.to_string(),
            "--ssh-user",
            &whoami(),
        ])
        .args(["--ssh-key", key.to_str().unwrap(), "--ssh-host-key", pinned])
        .args(["--agent-binary", static_agent().to_str().unwrap()]);
    }
    c
}

/// A run of the tiny repo's two branches on the Azure host, long enough to interrupt.
fn long_run(
    fake: &FakeArm,
    sshd: &Sshd,
    repo: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Child {
    long_run_at(fake, sshd, sshd.port, repo, extra)
}

fn long_run_at(
    fake: &FakeArm,
    sshd: &Sshd,
    port: u16,
    repo: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Child {
    let results = repo.with_file_name("results");
    benchvm_at(fake, sshd, port, &azure_run(repo, "perf/slow"))
        .args(["--rounds", "500", "--results", results.to_str().unwrap()])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the child's stderr until a line contains `needle`; returns everything read.
async fn read_until(child: &mut tokio::process::Child, needle: &str) -> (bool, Vec<String>) {
    let stderr = child.stderr.as_mut().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    for _ in 0..2000 {
        match tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await {
            Ok(Ok(Some(l))) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return (true, seen);
                }
            }
            _ => break,
        }
    }
    (false, seen)
}

/// The rest of the child's stderr and its exit code, bounded.
async fn finish(mut child: tokio::process::Child, within: Duration) -> (Option<i32>, String) {
    let mut rest = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = tokio::time::timeout(
            within,
            tokio::io::AsyncReadExt::read_to_string(&mut e, &mut rest),
        )
        .await;
    }
    let status = tokio::time::timeout(within, child.wait())
        .await
        .expect("the controller exits in time")
        .unwrap();
    (status.code(), rest)
}

/// The remote agent of the controller with pid `controller` (its results live under
/// ~/.benchvm/runs/<controller pid>-<time>), as `pgrep -af` lists it.
fn remote_agent(controller: u32) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-af", &format!("runs/{controller}-")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits up to `secs` for the remote agent to be gone.
async fn agent_gone(controller: u32, secs: u64) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if remote_agent(controller).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
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
    let out = benchvm(&fake, &sshd, &azure_run(&repo, "perf/slow"))
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
    let out = benchvm(&fake, &sshd, &azure_run(&repo, "no-such-branch"))
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
    let mut child = benchvm(&fake, &sshd, &azure_run(&repo, "perf/slow"))
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
    let pid = child.id().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
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
    // The connection closed with the controller: the agent's stdin ends and it stops.
    assert!(
        agent_gone(pid, 20).await,
        "left behind: {}",
        remote_agent(pid)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_run_is_reported_and_the_vm_deallocated() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let mut child = long_run(&fake, &sshd, &repo, &[]);
    let pid = child.id().unwrap();
    let (started, seen) = read_until(&mut child, "round 1/500 done").await;
    assert!(started, "{seen:?}");
    assert!(!remote_agent(pid).is_empty(), "the agent runs on the host");
    let killed = std::process::Command::new("pkill")
        .args([
            "-KILL",
            "-f",
            &format!("^[^ ]*/benchvm-agent-[^ ]* compare .*runs/{pid}-"),
        ])
        .status()
        .unwrap();
    assert!(killed.success(), "the agent was found and killed");
    let (code, rest) = finish(child, Duration::from_secs(60)).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(rest.contains("killed by signal 9"), "{rest}");
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_dead_is_noticed_the_agent_stops_and_the_vm_is_deallocated() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    // The controller reaches the host through a relay that will stop delivering.
    let relay = Relay::start(sshd.port);
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let mut child = long_run_at(
        &fake,
        &sshd,
        relay.port,
        &repo,
        &["--ssh-keepalive-secs", "1"],
    );
    let pid = child.id().unwrap();
    let (started, seen) = read_until(&mut child, "round 1/500 done").await;
    assert!(started, "{seen:?}");
    relay.freeze();
    let frozen = Instant::now();
    let (code, rest) = finish(child, Duration::from_secs(60)).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(rest.contains("lost the connection to 127.0.0.1"), "{rest}");
    assert!(
        frozen.elapsed() < Duration::from_secs(30),
        "noticed in {:?}",
        frozen.elapsed()
    );
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    // The agent hears no beats on its stdin (4 × 1 s + 5 s allowed) and stops by itself,
    // although sshd still holds its pipes open.
    assert!(
        agent_gone(pid, 40).await,
        "left behind: {}",
        remote_agent(pid)
    );
}

/// The controller SIGKILLed mid-run (its runner died): nothing is left to deallocate the VM
/// but the VM's own dead-man switch. The agent hears no more beats and stops, leaving the
/// switch armed; the VM stays running until, the heartbeat gone stale, a tick of the switch
/// (the real script, the fake playing the metadata service and ARM) deallocates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_controller_leaves_the_vm_to_its_dead_man_switch() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let switch = tmp.path().join("switch");
    let mut child = long_run(
        &fake,
        &sshd,
        &repo,
        &["--dead-man-dir", switch.to_str().unwrap()],
    );
    let pid = child.id().unwrap();
    let (started, seen) = read_until(&mut child, "round 1/500 done").await;
    assert!(started, "{seen:?}");
    assert_eq!(
        std::fs::read_to_string(switch.join("armed")).unwrap(),
        "600",
        "the agent armed the switch in the directory given"
    );
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("a SIGKILL ends the controller")
        .unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    // Its connection closed with it: the agent's stdin ends and it stops.
    assert!(
        agent_gone(pid, 40).await,
        "left behind: {}",
        remote_agent(pid)
    );
    assert_eq!(posts(&fake, "deallocate"), 0, "nobody asked for it");
    assert_eq!(fake.state.lock().unwrap().power, "running");
    assert!(switch.join("armed").exists(), "left armed by the agent");

    // A tick while the heartbeat is recent leaves the VM alone...
    let out = crate::deadman::run_switch(&fake, &switch).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(posts(&fake, "deallocate"), 0);
    // ...and one after ten minutes of silence deallocates it.
    crate::deadman::stale(&switch.join("heartbeat"), "11 minutes ago");
    let out = crate::deadman::run_switch(&fake, &switch).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(posts(&fake, "deallocate"), 1);
    // The switch requests the deallocation and does not wait for it.
    let power = fake.state.lock().unwrap().power.clone();
    assert!(
        ["deallocating", "deallocated"].contains(&power.as_str()),
        "{power}"
    );
    assert!(!switch.join("armed").exists(), "disarmed after firing");
}

/// A VM that answers with another host key than the pinned one is not logged into, and is
/// deallocated all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pinned_host_key_stops_the_run_and_deallocates_the_vm() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let results = tmp.path().join("results");
    let other = tmp.path().join("other_host_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let pinned = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let args = azure_run(&repo, "perf/slow");
    let mut cmd = benchvm_with_key(&fake, sshd.port, &sshd.user_key(), pinned.trim(), &args);
    cmd.args(["--results", results.to_str().unwrap()]);
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the run ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refusing to connect"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "not retried until the start deadline: {:?}",
        started.elapsed()
    );
    assert!(!results.exists(), "no results directory");
    assert_eq!((posts(&fake, "start"), posts(&fake, "deallocate")), (1, 1));
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
}

/// The Action's post step after a main step that started the VM: it deallocates the VM
/// (against ARM, here the fake), unless the main step left it to another run using it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_step_deallocates_a_vm_the_main_step_started() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let post_step = |left: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_benchvm"));
        c.kill_on_drop(true);
        c.arg("action-cleanup")
            .env("STATE_started", "1")
            .env_remove("STATE_left_to_another_run")
            .env("INPUT_BACKEND", "azure")
            .env("INPUT_AZURE-SUBSCRIPTION", "sub-1")
            .env("INPUT_AZURE-RESOURCE-GROUP", "bench-rg")
            .env("INPUT_AZURE-VM", "bench-vm")
            .env("INPUT_AZURE-CREDENTIAL", "client-secret")
            .env("INPUT_AZURE-TENANT-ID", "t")
            .env("INPUT_AZURE-CLIENT-ID", "c")
            .env("INPUT_AZURE-ARM-ENDPOINT", fake.url())
            .env("INPUT_AZURE-AUTHORITY-HOST", fake.url())
            .env("AZURE_CLIENT_SECRET", "s3cret");
        if left {
            c.env("STATE_left_to_another_run", "1");
        }
        c
    };
    let within = Duration::from_secs(120);
    let out = tokio::time::timeout(within, post_step(true).output())
        .await
        .expect("the post step ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("left the VM to another run"), "{stderr}");
    assert_eq!(posts(&fake, "deallocate"), 0);

    let out = tokio::time::timeout(within, post_step(false).output())
        .await
        .expect("the post step ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("deallocated VM"), "{stderr}");
    assert_eq!(posts(&fake, "deallocate"), 1);
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_timeout_stops_the_agent_and_deallocates_the_vm() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let mut child = long_run(&fake, &sshd, &repo, &["--timeout-minutes", "0.25"]);
    let pid = child.id().unwrap();
    // The agent is at work (500 rounds take far longer than 15 s). Not "round 1 done": under
    // load the install and warm-up alone took 13 s, and the timeout came first.
    let (started, seen) = read_until(&mut child, "checking out").await;
    assert!(started, "{seen:?}");
    let (code, rest) = finish(child, Duration::from_secs(90)).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(rest.contains("ran longer than 15 s"), "{rest}");
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    assert!(
        agent_gone(pid, 10).await,
        "left behind: {}",
        remote_agent(pid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_azure_gives_up_on_fails_fast_with_its_reason() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    fake.state.lock().unwrap().fail_start = Some((
        "AllocationFailed".into(),
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region.".into(),
    ));
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let t = Instant::now();
    let (code, rest) = finish(long_run(&fake, &sshd, &repo, &[]), Duration::from_secs(120)).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(
        rest.contains("Azure could not start VM bench-vm: AllocationFailed: Allocation failed"),
        "{rest}"
    );
    // Polled every 5 s over 2 transitions, not the 10-minute start deadline.
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
}

/// The tiny repo's two branches on the Azure host, logging in with `key`, results in `dir`.
fn tiny_run_with_key(
    fake: &FakeArm,
    sshd: &Sshd,
    key: &std::path::Path,
    dir: &std::path::Path,
) -> tokio::process::Child {
    let repo = dir.join("tinyrepo");
    tiny_repo(&repo);
    benchvm_with_key(
        fake,
        sshd.port,
        key,
        &sshd.host_key(),
        &azure_run(&repo, "perf/slow"),
    )
    .args(["--results", dir.join("results").to_str().unwrap()])
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap()
}

/// Issue 14: a login the VM refuses (a wrong user key) stops the run at once, exit 3, and
/// the VM it started is deallocated; the controller does not retry for the 10-minute start
/// deadline while the VM bills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_fails_fast_and_deallocates_the_vm() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let wrong = tmp.path().join("wrong_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .unwrap();
    assert!(made.success());
    let t = Instant::now();
    let child = tiny_run_with_key(&fake, &sshd, &wrong, tmp.path());
    let (code, rest) = finish(child, Duration::from_secs(180)).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(rest.contains("failed to authenticate"), "{rest}");
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
    assert_eq!(posts(&fake, "start"), 1);
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    assert!(!tmp.path().join("results/report.json").exists());
}

/// Issue 14: Entra refuses the credential (a wrong or revoked client secret): the run stops
/// with exit 3 and Entra's reason, without starting the VM and without retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_stops_the_run_before_the_vm_starts() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    for _ in 0..20 {
        fake.fault(crate::support::fake_arm::Fault {
            path_contains: "/oauth2/v2.0/token",
            status: 401,
            headers: vec![],
            body: r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.into(),
        });
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = tiny_run_with_key(&fake, &sshd, &sshd.user_key(), tmp.path());
    let (code, rest) = finish(child, Duration::from_secs(120)).await;
    assert_eq!(code, Some(3), "{rest}");
    assert!(rest.contains("AADSTS7000215"), "{rest}");
    assert_eq!(posts(&fake, "start"), 0, "the VM was started");
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    assert!(!tmp.path().join("results/report.json").exists());
}

/// A two-round run of the tiny repo whose first deallocation request ARM answers with
/// `status` and ARM's error `code`; its output, the fake, and the results directory (in
/// the returned temporary directory).
async fn run_with_a_failing_deallocation(
    status: u16,
    code: &str,
) -> (std::process::Output, FakeArm, tempfile::TempDir) {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    fake.fault(crate::support::fake_arm::Fault {
        path_contains: "/deallocate?",
        status,
        headers: vec![],
        body: format!("{{\"error\":{{\"code\":\"{code}\",\"message\":\"planted\"}}}}"),
    });
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let run = benchvm(&fake, &sshd, &azure_run(&repo, "perf/slow"))
        .args(["--rounds", "2", "--markdown", "--results"])
        .arg(tmp.path().join("r"))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the run ends")
        .unwrap();
    (out, fake, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deallocation_that_fails_once_is_retried() {
    let (out, fake, _tmp) = run_with_a_failing_deallocation(500, "InternalServerError").await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(posts(&fake, "deallocate"), 2, "the 500 was retried");
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
}

/// A deallocation ARM refuses (403, not retried) after a good run: the results are good, so
/// they are written and shown all the same; the VM left running is the run's error (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deallocation_that_fails_after_a_good_run_keeps_and_shows_the_results() {
    let (out, fake, tmp) = run_with_a_failing_deallocation(403, "AuthorizationFailed").await;
    let results = tmp.path().join("r");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("deallocate the benchmark VM") && stderr.contains("AuthorizationFailed"),
        "{stderr}"
    );
    assert_eq!(posts(&fake, "deallocate"), 1, "a 403 is not retried");
    assert_eq!(fake.state.lock().unwrap().power, "running");
    let comment = std::fs::read_to_string(results.join("comment.md")).expect("comment.md");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        comment,
        "shown as written"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    assert!(
        report["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "vm deallocate"),
        "the controller's spans joined the report: {report}"
    );
}

/// A host whose job panics after the VM started: the panic must not skip the teardown.
#[derive(Debug)]
struct PanickingJob(Arc<AzureVm>);

#[async_trait::async_trait]
impl Host for PanickingJob {
    async fn prepare(&self, _: &Timeline) -> BenchResult<()> {
        self.0.start(Duration::from_secs(60)).await.unwrap();
        Ok(())
    }

    async fn run_agent(&self, _: &Job, _: &Timeline) -> BenchResult<()> {
        panic!("injected panic in the middle of the job");
    }

    async fn teardown(&self, wait: bool, timeline: &Timeline) -> BenchResult<()> {
        benchvm::host::azure::deallocate(&self.0, wait, timeline).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_job_still_deallocates_the_vm() {
    let fake = FakeArm::start("bench-vm", "deallocated").await;
    let options = AzureOptions {
        arm_endpoint: fake.url().parse().unwrap(),
        authority_host: fake.url().parse().unwrap(),
        poll_interval: Duration::from_millis(50),
        ..AzureOptions::default()
    };
    let vm = AzureVm::new(
        VmRef {
            subscription: "sub-1".into(),
            resource_group: "bench-rg".into(),
            name: "bench-vm".into(),
        },
        CredentialConfig::ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: "s".into(),
        },
        options,
    )
    .unwrap();
    let mut job = Job::new(".", "main", "perf/x");
    job.options.results = Some(std::env::temp_dir().join("never-written"));
    let err = benchvm::host::run_on(Arc::new(PanickingJob(Arc::new(vm))), &job, &Timeline::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(posts(&fake, "start"), 1, "the VM was started");
    assert_eq!(
        fake.state.lock().unwrap().power,
        "deallocated",
        "and deallocated after the panic"
    );
}

/// `--azure-credential cli` asks the Azure CLI for the token: a stand-in `az` on PATH
/// answers like `az account get-access-token --output json` (CLI 2.54+ fields).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_azure_cli_credential_asks_az_for_a_token_with_the_arm_scope() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls");
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> {}\necho '{{\"accessToken\":\"cli-token\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":{expires},\"subscription\":\"sub-1\",\"tenant\":\"t\",\"tokenType\":\"Bearer\"}}'\n",
        calls.display()
    );
    let az = bin.path().join("az");
    std::fs::write(&az, script).unwrap();
    std::fs::set_permissions(&az, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm"))
        .args([
            "cleanup",
            "--azure-subscription",
            "sub-1",
            "--azure-resource-group",
            "bench-rg",
        ])
        .args(["--azure-vm", "bench-vm", "--azure-credential", "cli"])
        .args(["--azure-arm-endpoint", &fake.url()])
        .env("PATH", path)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(&calls).unwrap();
    assert!(
        args.contains(&format!(
            "account get-access-token --output json --scope {}/.default",
            fake.base()
        )),
        "{args}"
    );
    let dealloc = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.contains("/deallocate?"))
        .expect("deallocated");
    assert_eq!(dealloc.auth.as_deref(), Some("Bearer cli-token"));
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
}

/// Issue 14: two runs on one VM. While another run's agent holds its lease on the VM
/// (running, or waiting for the host), a run that ends leaves the VM running for it; once no
/// other lease is held, the VM is deallocated as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_another_run_still_uses_is_left_running_for_it() {
    let (fake, sshd) = (
        FakeArm::start("bench-vm", "deallocated").await,
        Sshd::start(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    // The other run's lease, where its agent would hold it.
    let home = std::env::var("HOME").unwrap();
    let leases = std::path::Path::new(&home)
        .join(".benchvm/leases")
        .join(benchvm::host::ssh::lease_dir_name("127.0.0.1", sshd.port));
    // What is there is stale: an earlier test's sshd had this port, and a run killed there
    // left its lease file.
    let _ = std::fs::remove_dir_all(&leases);
    std::fs::create_dir_all(&leases).unwrap();
    let lease = leases.join("other-run");
    let mut other = std::process::Command::new("flock")
        .arg(&lease)
        .args([
            "python3",
            "-c",
            "import sys; print('held', flush=True); sys.stdin.read()",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(other.stdout.as_mut().unwrap()),
        &mut said,
    )
    .unwrap();
    assert_eq!(said.trim(), "held");

    let run = |name: &str| {
        benchvm(&fake, &sshd, &azure_run(&repo, "perf/slow"))
            .args(["--rounds", "2", "--results"])
            .arg(tmp.path().join(name))
            .output()
    };
    let out = run("r1").await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("another run is using the VM"), "{stderr}");
    assert_eq!(fake.state.lock().unwrap().power, "running");
    assert_eq!(posts(&fake, "deallocate"), 0);
    // This run's own lease was released and removed with its run directory.
    let left: Vec<_> = std::fs::read_dir(&leases)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("other-run")]);

    // The other run ends: the next run deallocates.
    drop(other.stdin.take());
    assert!(other.wait().unwrap().success());
    let out = run("r2").await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("another run"), "{stderr}");
    assert_eq!(fake.state.lock().unwrap().power, "deallocated");
    assert_eq!(posts(&fake, "deallocate"), 1);
    std::fs::remove_dir_all(&leases).unwrap();
}
