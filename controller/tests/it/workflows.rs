//! The shipped workflows: they pass the linters CI runs (actionlint, zizmor), every job that
//! asks GitHub for an OIDC token runs in the `benchvm` environment (so one federated
//! credential serves every trigger, the reaper's included), and the reaper reaps every VM
//! the benchmark workflows use.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn workflows() -> Vec<(String, Value)> {
    let mut found: Vec<_> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_yaml::from_str(&text).unwrap())
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Runs a linter that scripts/prerequisites installs; its exit code and output.
fn lint(program: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed (scripts/prerequisites): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn the_workflows_and_the_action_pass_actionlint_and_zizmor() {
    let files: Vec<String> = workflows()
        .iter()
        .map(|(name, _)| format!(".github/workflows/{name}"))
        .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, text) = lint("actionlint", &args);
    assert_eq!(code, Some(0), "actionlint: {text}");
    let (code, text) = lint("zizmor", &["--offline", ".github/workflows/", "action.yml"]);
    assert_eq!(code, Some(0), "zizmor: {text}");
}

#[test]
fn every_job_with_an_oidc_token_runs_in_the_benchvm_environment() {
    let mut oidc_jobs = 0;
    for (file, workflow) in workflows() {
        let Some(jobs) = workflow["jobs"].as_mapping() else {
            continue;
        };
        for (name, job) in jobs {
            if job["permissions"]["id-token"].as_str() != Some("write") {
                continue;
            }
            oidc_jobs += 1;
            assert_eq!(
                job["environment"].as_str(),
                Some("benchvm"),
                "{file}: job {name:?} asks for an OIDC token outside the benchvm environment"
            );
        }
    }
    assert!(
        oidc_jobs >= 3,
        "benchmark, sharded and reaper jobs ({oidc_jobs})"
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(r#""subject": "repo:OWNER/REPO:environment:benchvm""#),
        "the README's federated credential is the environment's"
    );
}

/// The reaper's list step, run as the runner would: every VM of both benchmark workflows,
/// each once, none when nothing is configured, and a malformed shard list warned about
/// without keeping the single VM from being reaped.
#[test]
fn the_reaper_lists_every_vm_the_benchmark_workflows_use() {
    let (_, reaper) = workflows()
        .into_iter()
        .find(|(name, _)| name == "reaper.yml")
        .expect("reaper.yml");
    let list = &reaper["jobs"]["list"]["steps"][0];
    let script = list["run"].as_str().expect("the list step's script");
    let reaped = &reaper["jobs"]["reap"];
    assert_eq!(
        reaped["strategy"]["matrix"]["vm"].as_str(),
        Some("${{ fromJSON(needs.list.outputs.vms) }}")
    );
    assert_eq!(
        reaped["concurrency"]["group"].as_str(),
        Some("benchvm-${{ matrix.vm }}"),
        "one job per VM, waiting while a benchmark holds it"
    );
    let shards = r#"[{"vm": "bench-1", "host": "h1"}, {"vm": "bench-2"}, {"vm": "bench-1"}]"#;
    for (vm, shards, want) in [
        ("bench-vm", shards, r#"["bench-1","bench-2","bench-vm"]"#),
        ("bench-vm", "", r#"["bench-vm"]"#),
        ("", shards, r#"["bench-1","bench-2"]"#),
        ("", "", "[]"),
        ("bench-vm", "{not json", r#"["bench-vm"]"#),
        ("bench-vm", r#"{"vm": "x"}"#, r#"["bench-vm"]"#),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let output = tmp.path().join("output");
        let out = Command::new("bash")
            .args(["-e", "-c", script])
            .env("VM", vm)
            .env("SHARDS", shards)
            .env("GITHUB_OUTPUT", &output)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read_to_string(&output).unwrap();
        assert_eq!(
            written.trim(),
            format!("vms={want}"),
            "VM {vm:?}, shards {shards:?}"
        );
    }
}
