//! `benchvm action` as the runner starts it: GITHUB_* variables, an event payload, INPUT_*
//! inputs, a fake GitHub REST server, the local backend on the tiny project. The refs come
//! from the event, the comment is posted, the summary and outputs are written; a comment
//! that fails costs nothing else; a fork pull request is refused with the reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::fake_github::{FakeGithub, OWNER, REPO, TOKEN};
use crate::support::tiny::{shared_cache, tiny_repo};
use benchvm_agent::report::render::MARKER;

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Job {
    dir: tempfile::TempDir,
    repo: PathBuf,
    base_sha: String,
    head_sha: String,
    /// More of the runner's variables (RUNNER_TEMP, say).
    env: std::cell::RefCell<Vec<(String, String)>>,
}

impl Job {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("workspace");
        tiny_repo(&repo);
        let base_sha = git(&repo, &["rev-parse", "main"]);
        let head_sha = git(&repo, &["rev-parse", "perf/slow"]);
        Job {
            dir,
            repo,
            base_sha,
            head_sha,
            env: Default::default(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pull_request_event(&self, number: u64, head_repo: &str) -> PathBuf {
        let event = serde_json::json!({
            "action": "synchronize",
            "number": number,
            "pull_request": {
                "number": number,
                "base": {"ref": "main", "sha": self.base_sha, "repo": {"full_name": format!("{OWNER}/{REPO}")}},
                "head": {"ref": "perf/slow", "sha": self.head_sha, "repo": {"full_name": head_repo}}
            },
            "repository": {"full_name": format!("{OWNER}/{REPO}"), "default_branch": "main"}
        });
        let path = self.path("event.json");
        std::fs::write(&path, event.to_string()).unwrap();
        path
    }

    fn run(&self, gh: &FakeGithub, event: &Path, inputs: &[(&str, &str)]) -> Output {
        self.run_as(gh, "pull_request", event, inputs)
    }

    fn run_as(
        &self,
        gh: &FakeGithub,
        event_name: &str,
        event: &Path,
        inputs: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_benchvm"));
        cmd.arg("action");
        // Nothing of a surrounding CI job may leak in.
        for (k, _) in std::env::vars() {
            if k.starts_with("GITHUB_") || k.starts_with("INPUT_") || k.starts_with("RUNNER_") {
                cmd.env_remove(k);
            }
        }
        let vars: HashMap<&str, String> = [
            ("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}")),
            ("GITHUB_EVENT_NAME", event_name.into()),
            ("GITHUB_EVENT_PATH", event.display().to_string()),
            (
                "GITHUB_SHA",
                "0000000000000000000000000000000000000000".into(),
            ),
            ("GITHUB_API_URL", gh.url()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("GITHUB_RUN_ID", "4242".into()),
            ("GITHUB_WORKSPACE", self.repo.display().to_string()),
            (
                "GITHUB_STEP_SUMMARY",
                self.path("summary.md").display().to_string(),
            ),
            (
                "GITHUB_OUTPUT",
                self.path("output.txt").display().to_string(),
            ),
            ("GITHUB_ACTIONS", "true".into()),
            ("BENCHVM_CACHE", shared_cache().display().to_string()),
            ("INPUT_BACKEND", "local".into()),
            ("INPUT_ALLOW-LOCAL-PULL-REQUESTS", "true".into()),
            ("INPUT_GITHUB-TOKEN", TOKEN.into()),
            ("INPUT_RESULTS", self.path("results").display().to_string()),
            ("INPUT_COMMENT", "always".into()),
        ]
        .into_iter()
        .collect();
        cmd.envs(vars);
        cmd.envs(self.env.borrow().iter().cloned());
        for (k, v) in inputs {
            cmd.env(format!("INPUT_{}", k.to_uppercase()), v);
        }
        cmd.current_dir(self.dir.path());
        cmd.output().unwrap()
    }

    fn outputs(&self) -> HashMap<String, String> {
        std::fs::read_to_string(self.path("output.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// The names action.yml declares as outputs.
fn declared_outputs() -> Vec<String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../action.yml")).unwrap();
    let yml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    yml["outputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_pull_request_run_comments_summarizes_and_sets_outputs() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(7, "perf/slow");
    gh.state.lock().unwrap().compare = Some((job.base_sha.clone(), job.base_sha.clone()));
    let event = job.pull_request_event(7, &format!("{OWNER}/{REPO}"));
    let out = job.run(&gh, &event, &[("fail-on-regression", "true")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "regression + fail-on-regression\n{stderr}"
    );

    // The base is the merge base GitHub reported, the head the PR's head commit.
    let calls = gh.calls();
    let compare = format!("/compare/{}...{}", job.base_sha, job.head_sha);
    assert!(calls.iter().any(|c| c.contains(&compare)), "{calls:#?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.path("results/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["base"]["commit"], job.base_sha.as_str());
    assert_eq!(report["head"]["commit"], job.head_sha.as_str());

    // Workflow commands are off while the agent's lines reach the job log, and on again
    // after (ARCHITECTURE: untrusted output).
    let lines: Vec<&str> = stderr.lines().collect();
    let off = lines
        .iter()
        .position(|l| l.starts_with("::stop-commands::benchvm-"))
        .unwrap_or_else(|| panic!("commands are switched off\n{stderr}"));
    let token = lines[off].trim_start_matches("::stop-commands::");
    let on = lines
        .iter()
        .position(|l| *l == format!("::{token}::"))
        .unwrap_or_else(|| panic!("and on again\n{stderr}"));
    let agent: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("benchvm-agent"))
        .collect();
    assert!(!agent.is_empty(), "{stderr}");
    assert!(
        off < agent[0] && agent[agent.len() - 1] < on,
        "every agent line lies between: {off} < {agent:?} < {on}"
    );

    let comments = gh.comments_on(7);
    assert_eq!(comments.len(), 1, "{calls:#?}");
    let body = &comments[0].body;
    assert!(body.starts_with(MARKER), "{body}");
    assert!(
        body.contains("time_loop") && body.contains("regressed"),
        "{body}"
    );
    assert!(body.contains("```mermaid"), "the chart: {body}");
    assert!(body.contains("/actions/runs/4242"), "links the run: {body}");

    let summary = std::fs::read_to_string(job.path("summary.md")).unwrap();
    assert!(summary.contains("time_loop"), "{summary}");
    let outputs = job.outputs();
    assert_eq!(outputs["verdict"], "regressed");
    assert_ne!(outputs["regressed"], "0");
    assert_eq!(
        outputs["report"],
        job.path("results/report.json").display().to_string()
    );
    assert!(
        outputs["comment-url"].contains("#issuecomment-"),
        "{outputs:?}"
    );
    let declared = declared_outputs();
    for name in outputs.keys() {
        assert!(
            declared.contains(name),
            "output {name} is declared in action.yml"
        );
    }
}

#[test]
fn a_comment_that_cannot_be_posted_keeps_the_report_and_exits_3() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    // No pull request 8 on the server: every comment call is a 404.
    let event = job.pull_request_event(8, &format!("{OWNER}/{REPO}"));
    let out = job.run(&gh, &event, &[("base", "main"), ("head", "perf/slow")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the comment failed") && stderr.contains("404"),
        "{stderr}"
    );
    assert!(job.path("results/report.json").is_file());
    let summary = std::fs::read_to_string(job.path("summary.md")).unwrap();
    assert!(
        summary.contains(MARKER) && summary.contains("time_loop"),
        "{summary}"
    );
    assert_eq!(job.outputs()["verdict"], "regressed");
    // Explicit refs: no merge-base lookup was needed.
    assert!(!gh.calls().iter().any(|c| c.contains("/compare/")));
}

/// Issue 15: the checkout is the head's. Results default to the runner's temporary
/// directory, and a results path through a symbolic link (one the pull request committed,
/// pointing at another action's files) is refused before anything is written.
#[test]
fn results_go_outside_the_checkout_and_never_through_a_link() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(9, "perf/slow");
    let event = job.pull_request_event(9, &format!("{OWNER}/{REPO}"));
    let elsewhere = job.path("another-action");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let link = job.repo.join("benchvm-results");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let out = job.run(&gh, &event, &[("results", link.to_str().unwrap())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // No results input: the runner's temporary directory, named in the outputs even when
    // the run fails early (here: a config that is not there).
    let temp = job.path("runner-temp");
    std::fs::create_dir_all(&temp).unwrap();
    job.env
        .borrow_mut()
        .push(("RUNNER_TEMP".into(), temp.display().to_string()));
    let out = job.run(
        &gh,
        &event,
        &[
            ("results", ""),
            ("base", "main"),
            ("head", "perf/slow"),
            ("config", "missing.yml"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        job.outputs()["results"],
        temp.join("benchvm-results").display().to_string()
    );
}

/// Issue 15: `backend: local` on a pull request runs the head's code beside the job's token;
/// refused unless the workflow opts in.
#[test]
fn the_local_backend_on_a_pull_request_needs_an_opt_in() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(9, "perf/slow");
    let event = job.pull_request_event(9, &format!("{OWNER}/{REPO}"));
    let out = job.run(&gh, &event, &[("allow-local-pull-requests", "false")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("allow-local-pull-requests"), "{stderr}");
    assert!(gh.calls().is_empty(), "{:?}", gh.calls());
    assert!(!job.path("results").exists());
}

/// Issue 15: a `workflow_run` started by a fork's pull request carries the fork's code just
/// the same; refused like the pull request itself.
#[test]
fn a_workflow_run_from_a_fork_is_refused() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    let event = serde_json::json!({
        "workflow_run": {
            "head_branch": "perf/slow",
            "head_sha": job.head_sha,
            "head_repository": {"full_name": "mallory/textkit"}
        },
        "repository": {"full_name": format!("{OWNER}/{REPO}"), "default_branch": "main"}
    });
    let path = job.path("event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let out = job.run_as(
        &gh,
        "workflow_run",
        &path,
        &[("base", "main"), ("head", "perf/slow")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mallory/textkit"), "{stderr}");
    assert_eq!(job.outputs()["verdict"], "refused");
    assert!(!job.path("results").exists());
}

#[test]
fn a_fork_pull_request_is_refused_with_the_reason() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(9, "perf/slow");
    let event = job.pull_request_event(9, "mallory/textkit");
    let out = job.run(&gh, &event, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mallory/textkit") && stderr.contains("allow-forks"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(job.path("summary.md")).unwrap();
    assert!(
        summary.contains("would run on your benchmark VM"),
        "{summary}"
    );
    assert_eq!(job.outputs()["verdict"], "refused");
    assert!(
        gh.calls().is_empty(),
        "nothing was called: {:?}",
        gh.calls()
    );
    assert!(!job.path("results").exists());
}

#[test]
fn outside_a_github_job_the_error_names_the_missing_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm"))
        .arg("action")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("GITHUB_REPOSITORY"), "{stderr}");
}

#[test]
fn a_failed_run_replaces_the_previous_result_in_the_comment() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(7, "perf/slow");
    gh.add_comments_by(7, 1, "github-actions[bot]", |_| {
        format!("{MARKER}\n## benchvm\n🟢 Faster, no regression (an older commit)")
    });
    let event = job.pull_request_event(7, &format!("{OWNER}/{REPO}"));
    let out = job.run(
        &gh,
        &event,
        &[("base", "no-such-branch"), ("head", "perf/slow")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown ref is a usage error: {stderr}"
    );
    let comments = gh.comments_on(7);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(
        body.starts_with(MARKER) && body.contains("The benchmark run failed"),
        "{body}\n{stderr}\n{:#?}",
        gh.calls()
    );
    assert!(!body.contains("Faster"), "the old result is gone: {body}");
    assert!(body.contains("/actions/runs/4242"), "{body}");
    assert_eq!(job.outputs()["verdict"], "error");
    let summary = std::fs::read_to_string(job.path("summary.md")).unwrap();
    assert!(summary.contains("The benchmark run failed"), "{summary}");
}

/// With `backend: local` the benchmarked code runs on the runner: it must not see the
/// job's credentials (the token input, the OIDC request token, a client secret), neither in
/// its own environment nor in its ancestors' (`/proc/<pid>/environ` of the agent, the
/// controller: the confinement refuses those reads, even to root).
#[test]
fn the_benchmarked_code_gets_none_of_the_jobs_credentials() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(7, "perf/slow");
    // The benchmark may write nothing outside its checkout: it reports by its exit status.
    let probe = job.path("probe.py");
    std::fs::write(
        &probe,
        format!(
            r#"import os, sys
names = ["INPUT_GITHUB-TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_RUNTIME_TOKEN",
         "AZURE_CLIENT_SECRET", "GITHUB_TOKEN"]
values = [b"{TOKEN}", b"oidc-secret", b"runtime-secret", b"azure-secret", b"ghs_env_secret",
          b"planted-key-material"]
if not all(k in os.environ for k in ("PATH", "GITHUB_REPOSITORY", "RUNNER_TEMP")):
    sys.exit("not the real environment")
found = [n for n in names if n in os.environ]
pid = os.getppid()
while pid > 1:
    try:
        with open(f"/proc/{{pid}}/environ", "rb") as f:
            env = f.read()
        found += [f"{{v!r}} in /proc/{{pid}}/environ" for v in values if v in env]
    except OSError:
        pass
    with open(f"/proc/{{pid}}/stat") as f:
        pid = int(f.read().rsplit(")", 1)[1].split()[1])
# Files the job keeps in RUNNER_TEMP (an SSH key written from its input would be one).
for root, _, files in os.walk(os.environ["RUNNER_TEMP"]):
    for name in files:
        try:
            with open(os.path.join(root, name), "rb") as f:
                text = f.read()
        except OSError:
            continue
        found += [f"{{v!r}} in {{root}}/{{name}}" for v in values if v in text]
if found:
    sys.exit(f"LEAKED {{found}}")
"#
        ),
    )
    .unwrap();
    let config = job.path("bench-env.yml");
    std::fs::write(
        &config,
        format!(
            "startup:\n  - name: env\n    command: python {}\nsampling:\n  min_rounds: 2\n  max_rounds: 2\n  warmups: 0\n",
            probe.display()
        ),
    )
    .unwrap();
    let event = job.pull_request_event(7, &format!("{OWNER}/{REPO}"));
    let config = config.display().to_string();
    let inputs = [
        ("base", "main"),
        ("head", "perf/slow"),
        ("comment", "never"),
        ("config", config.as_str()),
    ];
    run_with_secrets(&job, &gh, &event, &inputs);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.path("results/report.json")).unwrap())
            .unwrap();
    let env = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["benchmark"] == "startup/env")
        .unwrap_or_else(|| panic!("the probe failed on every run: {report}"));
    assert_eq!(env["pairs"], 2, "{env}");
    assert_eq!(env["void_pairs"], 0, "{env}");
    // The head installed with the pull request's own uv cache, not one per commit.
    let head_cache = benchvm_agent::install::head_uv_cache(
        &shared_cache(),
        &format!("{} {OWNER}/{REPO} pr:7", job.repo.display()),
    );
    assert!(head_cache.is_dir(), "{} missing", head_cache.display());
}

#[test]
fn an_error_before_the_run_still_reaches_the_summary_and_outputs() {
    let job = Job::new();
    let gh = FakeGithub::start_in_thread();
    gh.add_pull(7, "perf/slow");
    let event = job.pull_request_event(7, &format!("{OWNER}/{REPO}"));
    let empty = job.path("no-shards");
    std::fs::create_dir_all(&empty).unwrap();
    let out = job.run(&gh, &event, &[("merge", empty.to_str().unwrap())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("::error title=benchvm failed::"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(job.path("summary.md")).unwrap();
    assert!(summary.contains("no report.json"), "{summary}");
    assert_eq!(job.outputs()["verdict"], "error");
}

#[test]
fn the_post_step_does_nothing_when_the_vm_was_never_started() {
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm"))
        .arg("action-cleanup")
        .env_remove("STATE_started")
        .env("INPUT_BACKEND", "azure")
        .env("INPUT_AZURE-VM", "bench-1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("never started the VM"), "{stderr}");
}

fn run_with_secrets(job: &Job, gh: &FakeGithub, event: &Path, inputs: &[(&str, &str)]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_benchvm"));
    cmd.arg("action");
    for (k, _) in std::env::vars() {
        if k.starts_with("GITHUB_") || k.starts_with("INPUT_") || k.starts_with("RUNNER_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_SHA", "0000000000000000000000000000000000000000")
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_WORKSPACE", &job.repo)
        .env("BENCHVM_CACHE", shared_cache())
        .env("INPUT_BACKEND", "local")
        .env("INPUT_ALLOW-LOCAL-PULL-REQUESTS", "true")
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_RESULTS", job.path("results"))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc-secret")
        .env("ACTIONS_RUNTIME_TOKEN", "runtime-secret")
        .env("AZURE_CLIENT_SECRET", "azure-secret")
        .env("GITHUB_TOKEN", "ghs_env_secret")
        // An SSH key given as text (a workflow may pass it for every backend) and the
        // runner's temporary directory, where it would be written.
        .env(
            "INPUT_SSH-KEY",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted-key-material\n-----END OPENSSH PRIVATE KEY-----",
        )
        .env("RUNNER_TEMP", {
            let temp = job.path("runner-temp");
            std::fs::create_dir_all(&temp).unwrap();
            temp
        })
        .current_dir(job.dir.path());
    for (k, v) in inputs {
        cmd.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_input_is_one_line_naming_the_input_and_its_values() {
    for (input, value, expect) in [
        ("INPUT_BACKEND", "bogus", "input 'backend'"),
        (
            "INPUT_COMMENT",
            "sometimes",
            "one of: always, on-change, never",
        ),
        ("INPUT_SHARD", "0/3", "input 'shard'"),
        (
            "INPUT_FAIL-ON-REGRESSION",
            "maybe",
            "input 'fail-on-regression'",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_benchvm"))
            .arg("action")
            .env(input, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(expect) && stderr.contains(value),
            "{stderr}"
        );
    }
}
