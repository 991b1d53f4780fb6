//! `--shard I/N` and `benchvm merge` end to end on the tiny project: two shards measure
//! disjoint shares that together are the whole suite, the merge recomputes the verdicts
//! over the whole set (the planted regression is found), a missing shard is refused by
//! name, and the Action's merge mode comments the merged result.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::fake_github::{FakeGithub, OWNER, REPO, TOKEN};
use crate::support::tiny::{LocalRun, tiny_repo};
use serde_json::Value;

fn benchvm<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_benchvm"))
        .args(args)
        .output()
        .unwrap()
}

fn run_shard(repo: &Path, results: &Path, shard: &str) -> Value {
    let out = LocalRun::new(repo, "main", "perf/slow")
        .flag("--results", results)
        .shared_cache()
        .flag("--seed", "11")
        .flag("--shard", shard)
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "shard {shard}: {stderr}");
    assert!(stderr.contains(&format!("shard {shard}: ")), "{stderr}");
    serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap()).unwrap()
}

fn ids(report: &Value, key: &str) -> Vec<String> {
    let mut v: Vec<String> = report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b.get("id")
                .or_else(|| b.get("benchmark"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_shards_merge_into_the_whole_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    tiny_repo(&repo);
    let (r1, r2) = (tmp.path().join("shard1"), tmp.path().join("shard2"));
    let one = run_shard(&repo, &r1, "1/2");
    let two = run_shard(&repo, &r2, "2/2");

    assert_eq!(one["shard"], "1/2");
    assert_eq!(two["shard"], "2/2");
    let (a, b) = (ids(&one, "benchmarks"), ids(&two, "benchmarks"));
    assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
    assert!(a.iter().all(|id| !b.contains(id)), "disjoint: {a:?} {b:?}");
    assert!(
        one["importtime"].is_object(),
        "shard 1 takes the import breakdown"
    );
    assert!(two["importtime"].is_null(), "only shard 1 does");

    // A missing shard is named.
    let out = benchvm([
        "merge",
        r1.to_str().unwrap(),
        "--results",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("shard 2/2 is missing"), "{stderr}");

    // The merge: a directory holding the shards' result directories, as download-artifact lays them out.
    let downloaded = tmp.path().join("downloaded");
    std::fs::create_dir_all(&downloaded).unwrap();
    std::fs::rename(&r1, downloaded.join("benchvm-results-1")).unwrap();
    std::fs::rename(&r2, downloaded.join("benchvm-results-2")).unwrap();
    let merged_dir = tmp.path().join("merged");
    let out = benchvm([
        "merge",
        downloaded.to_str().unwrap(),
        "--results",
        merged_dir.to_str().unwrap(),
        "--fail-on-regression",
        "--markdown",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the planted regression fails the merge: {stderr}"
    );
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(merged_dir.join("report.json")).unwrap())
            .unwrap();
    let mut all = a.clone();
    all.extend(b.clone());
    all.sort();
    assert_eq!(ids(&merged, "benchmarks"), all);
    assert!(merged.get("shard").is_none());
    let looped = merged["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["benchmark"] == "micro/bench_tiny.time_loop")
        .unwrap_or_else(|| panic!("{}", merged["comparisons"]));
    assert_eq!(looped["verdict"], "regressed");
    let spans: Vec<&str> = merged["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        spans.iter().any(|s| s.starts_with("shard 1/2: "))
            && spans.iter().any(|s| s.starts_with("shard 2/2: ")),
        "{spans:?}"
    );
    let comment = String::from_utf8_lossy(&out.stdout);
    assert!(
        comment.contains("time_loop") && !comment.contains("(shard"),
        "{comment}"
    );

    // The Action's merge job: no host, the merged comment on the PR.
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(5, "perf/slow");
    let event = tmp.path().join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({
            "pull_request": {"number": 5, "base": {"sha": "b"}, "head": {"sha": "h", "repo": {"full_name": format!("{OWNER}/{REPO}")}}},
            "repository": {"full_name": format!("{OWNER}/{REPO}"), "default_branch": "main"}
        })
        .to_string(),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_benchvm"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GITHUB_") || k.starts_with("INPUT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("action")
        .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", "h")
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_STEP_SUMMARY", tmp.path().join("summary.md"))
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_MERGE", format!("{}\n", downloaded.display()))
        .env("INPUT_RESULTS", tmp.path().join("action-merged"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let comments = gh.comments_on(5);
    assert_eq!(comments.len(), 1, "{stderr}");
    for id in &all {
        let name = id.split_once('/').unwrap().1;
        assert!(
            comments[0].body.contains(name),
            "{name} in the merged comment"
        );
    }
    assert!(tmp.path().join("action-merged/report.json").is_file());
}

#[test]
fn a_bad_shard_is_one_line_naming_the_flag() {
    let out = benchvm([
        "run", "--local", "--base", "a", "--head", "b", "--shard", "3/2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--shard") && stderr.contains("3/2"),
        "{stderr}"
    );
}
