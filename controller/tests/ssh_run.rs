//! `benchvm run --ssh` end to end against a real sshd on loopback: the static agent is
//! uploaded (checksum verified), the local repository travels as a git bundle, progress is
//! streamed, the results directory comes back, a second run reuses the uploaded agent.

mod support;

use std::process::Command;

use support::agent::static_agent;
use support::sshd::Sshd;
use support::tiny::tiny_repo;

fn run(
    sshd: &Sshd,
    repo: &std::path::Path,
    results: &std::path::Path,
    host_key: &str,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_benchvm"))
        .args([
            "run",
            "--ssh",
            "--ssh-host",
            "127.0.0.1",
            "--ssh-port",
            &sshd.port.to_string(),
        ])
        .args([
            "--ssh-user",
            &support::sshd::whoami(),
            "--ssh-key",
            sshd.user_key().to_str().unwrap(),
        ])
        .args([
            "--ssh-host-key",
            host_key,
            "--agent-binary",
            static_agent().to_str().unwrap(),
        ])
        .args([
            "--repo",
            repo.to_str().unwrap(),
            "--base",
            "main",
            "--head",
            "perf/slow",
            "--rounds",
            "3",
        ])
        .args(["--results", results.to_str().unwrap(), "--markdown"])
        .output()
        .unwrap()
}

#[test]
fn a_comparison_runs_over_ssh_and_its_results_come_back() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);

    let results = tmp.path().join("results");
    let out = run(&sshd, &repo, &results, &sshd.host_key());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("benchvm-agent [") && stderr.contains("round 3/3 done"),
        "progress streamed: {stderr}"
    );
    for file in [
        "report.json",
        "micro.json",
        "importtime.tsv",
        "summary.md",
        "comment.md",
    ] {
        assert!(results.join(file).is_file(), "{file} came back");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    // The agent saw commit ids from the bundle; the report keeps the names people gave.
    assert_eq!(report["base"]["ref"], "main");
    assert_eq!(report["head"]["ref"], "perf/slow");
    assert_eq!(report["base"]["commit"].as_str().unwrap().len(), 40);
    let spans: Vec<(String, serde_json::Value)> = report["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["cache"].clone()))
        .collect();
    assert!(
        spans.contains(&("upload agent".into(), "cold".into()))
            || spans.contains(&("upload agent".into(), "warm".into())),
        "{spans:?}"
    );
    for name in [
        "ssh connect",
        "upload code",
        "download results",
        "checkout",
        "measure",
    ] {
        assert!(
            spans.iter().any(|(n, _)| n == name),
            "span {name}: {spans:?}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("<!-- benchvm:comment -->") && stdout.contains("`perf/slow` vs `main`")
    );

    // Second run: the agent of the same hash is already there.
    let results2 = tmp.path().join("results2");
    let out = run(&sshd, &repo, &results2, &sshd.host_key());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results2.join("report.json")).unwrap())
            .unwrap();
    let upload = report["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "upload agent")
        .unwrap();
    assert_eq!(upload["cache"], "warm");
}

#[test]
fn a_wrong_pinned_host_key_stops_the_run_with_exit_code_3() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let results = tmp.path().join("results");
    let out = run(&sshd, &repo, &results, &other.host_key());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refusing to connect"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!results.exists());
}
