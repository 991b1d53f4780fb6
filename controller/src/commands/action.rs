//! `benchvm action`: the GitHub Action's step (its inputs are parsed in `cli/action.rs`). It
//! picks the refs from the event, runs the comparison like `benchvm run`, then writes the
//! job summary, the step outputs and the sticky PR comment.

use std::path::{Path, PathBuf};

use benchvm_agent::exit;
use benchvm_agent::job::{Job, JobOptions};
use benchvm_agent::report::{Report, render};
use benchvm_agent::stats::Verdict;

use crate::cli::action::{ActionFlags, Backend};
use crate::commands::{block_on, finalize, merge::merge_reports, prepare};
use crate::error::{Error, Result};
use crate::github::api::Client;
use crate::github::context::{Actions, Trigger, fork_refusal};
use crate::github::readout::{self, CommentMode, Posted};
use crate::host::{self, HostChoice, HostFlags};
use benchvm_agent::spans::Timeline;

/// Runs the action step; returns the exit code.
pub fn run(flags: ActionFlags) -> Result<i32> {
    let actions = Actions::from_env()?;
    if let Some(fork) = &actions.foreign_head
        && !flags.allow_forks
    {
        let message = fork_refusal(fork);
        eprintln!("::error title=benchvm: fork pull request not benchmarked::{message}");
        if let Some(path) = &actions.step_summary {
            let _ = readout::write_summary(path, &format!("## benchvm\n\n⛔ {message}\n"));
        }
        if let Some(path) = &actions.output {
            let _ = readout::write_outputs(path, &[("verdict", "refused".into())]);
        }
        return Ok(exit::USAGE);
    }
    // A merge runs none of the head's code (the sharded workflow's merge job is local).
    if flags.backend == Backend::Local
        && flags.merge.is_none()
        && matches!(actions.trigger, Trigger::PullRequest { .. })
        && !flags.allow_local_pull_requests
    {
        return Err(Error::Usage(
            "backend: local runs the pull request's code on this runner, beside the job's \
             token, secrets and the action's own files; use azure or ssh, or set \
             allow-local-pull-requests: true if you accept that"
                .into(),
        ));
    }
    block_on(run_job(flags, actions))
}

async fn run_job(mut flags: ActionFlags, actions: Actions) -> Result<i32> {
    if let Some(shard) = flags.shard
        && flags.comment != CommentMode::Never
    {
        eprintln!("benchvm: shard {shard}: no comment (the merge job comments)");
        flags.comment = CommentMode::Never;
    }
    let token = flags
        .github_token
        .clone()
        .or_else(|| std::env::var("GITHUB_TOKEN").ok())
        .filter(|t| !t.trim().is_empty());
    let client = match &token {
        Some(t) => Some(
            Client::new(&actions.api_url, t, actions.repository.clone())
                .map_err(|e| Error::Usage(format!("github-token: {e}")))?,
        ),
        None => None,
    };
    let shown_head = flags
        .head
        .clone()
        .unwrap_or_else(|| match &actions.trigger {
            Trigger::PullRequest { head_sha, .. } => head_sha.clone(),
            _ => actions.sha.clone(),
        });
    match run_or_merge(&flags, &actions, client.as_ref()).await {
        Ok(code) => Ok(code),
        Err(err) => {
            report_failure(&flags, &actions, client.as_ref(), &shown_head, &err).await;
            Err(err)
        }
    }
}

/// Where the results go: the given directory, or `benchvm-results` under the runner's
/// temporary directory (the checkout is the head's: a path in it can be a link the pull
/// request planted, and a later step may run what is written there). A path with a symbolic
/// link in it is refused: files written into it must land in it.
fn results_dir(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.to_owned()),
        None => std::env::var_os("RUNNER_TEMP")
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join("benchvm-results"),
    };
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        if std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Usage(format!(
                "results: {} is a symbolic link; give a results directory without one",
                prefix.display()
            )));
        }
    }
    Ok(path)
}

/// Everything after the client: a run (or a merge) and its readout.
async fn run_or_merge(
    flags: &ActionFlags,
    actions: &Actions,
    client: Option<&Client>,
) -> Result<i32> {
    let results = results_dir(flags.results.as_deref())?;
    // Named at once, so that an upload step finds the logs of a run that fails.
    if let Some(path) = &actions.output
        && let Err(e) = readout::write_outputs(path, &[("results", results.display().to_string())])
    {
        eprintln!("benchvm: could not write the step outputs: {e}");
    }
    if let Some(list) = &flags.merge {
        let inputs: Vec<PathBuf> = list.split_whitespace().map(PathBuf::from).collect();
        if inputs.is_empty() {
            return Err(Error::Usage("merge: no report given".into()));
        }
        let report = merge_reports(&inputs, &results)?;
        let mut job = Job::new(
            report.repository.clone(),
            report.base.reference.clone(),
            report.head.reference.clone(),
        );
        job.options.results = Some(results);
        return Ok(readout(flags, actions, client, &job, &report).await);
    }
    let repo = repository(flags, actions);
    let local_repo = Path::new(&repo).is_dir().then(|| PathBuf::from(&repo));
    let (base, head) = refs(flags, actions, client, local_repo.as_deref()).await?;
    // Written to a file only for a backend that connects: with `local` the benchmarked code
    // runs here as this user, and could read it.
    let key = match flags.backend {
        Backend::Local => SshKey::None,
        Backend::Ssh | Backend::Azure => SshKey::from_input(flags.ssh_key.as_deref())?,
    };
    let host = host::from_flags(&host_flags(flags, key.path()))?;
    let config = match &flags.config {
        Some(c) if !c.is_file() => {
            return Err(Error::Usage(format!(
                "config: {} is not a file (paths are relative to the workspace)",
                c.display()
            )));
        }
        Some(c) => Some(std::path::absolute(c).unwrap_or_else(|_| c.clone())),
        None => None,
    };
    let mut job = Job {
        config,
        options: JobOptions {
            results: Some(results),
            shard: flags.shard,
            shard_weights: flags.shard_weights.clone(),
            ..JobOptions::default()
        },
        // The head's uv cache lives as long as its pull request or branch, not one commit.
        // Named by the repository (owner/name: two repositories' workspaces may share a
        // path) and a kind, so that no branch name can equal a pull request's.
        head_cache: match &actions.trigger {
            Trigger::PullRequest { number, .. } => {
                Some(format!("{} pr:{number}", actions.repository))
            }
            Trigger::Push { branch, .. } => Some(format!("{} branch:{branch}", actions.repository)),
            Trigger::Dispatch { .. } | Trigger::Other { .. } => None,
        },
        ..Job::new(repo, base, head)
    };
    prepare(&mut job)?;
    eprintln!(
        "benchvm: comparing {} (head) with {} (base) on the {:?} backend",
        job.head(),
        job.base,
        flags.backend
    );
    let timeline = Timeline::new();
    if flags.backend == Backend::Azure {
        // From here on the VM may be running: the post step must deallocate it.
        save_state("started", "true");
    }
    let outcome = host::run_on(host.clone(), &job, &timeline).await;
    if host.left_to_another_run() {
        // The post step must not deallocate the VM under that run either.
        save_state("left_to_another_run", "true");
    }
    let ran = outcome?;
    let report = finalize(&job, &timeline, ran.agent_offset).inspect_err(|_| {
        if let Some(teardown) = &ran.teardown {
            eprintln!("error: {teardown}");
        }
    })?;
    let code = readout(flags, actions, client, &job, &report).await;
    // The results are good and got their comment; the VM that may still be running is the
    // step's error (the post step tries the deallocation again).
    let Some(teardown) = ran.teardown else {
        return Ok(code);
    };
    eprintln!(
        "::error title=benchvm: the VM was not deallocated::{}",
        benchvm_agent::report::inert::command_data(&teardown.to_string())
    );
    Ok(exit::INFRA)
}

/// Saves `name=value` for the post step (`STATE_<name>` there).
fn save_state(name: &str, value: &str) {
    if let Some(path) = std::env::var_os("GITHUB_STATE") {
        let _ = readout::write_outputs(Path::new(&path), &[(name, value.to_owned())]);
    }
}

/// The summary, the outputs and the comment of a finished run; the exit code.
async fn readout(
    flags: &ActionFlags,
    actions: &Actions,
    client: Option<&Client>,
    job: &Job,
    report: &Report,
) -> i32 {
    let footer = actions.run_url.as_ref().map_or(String::new(), |u| {
        format!("\n<sub>[workflow run]({u}) · full results in the run's artifacts</sub>\n")
    });
    if let Some(path) = &actions.step_summary {
        let text = render::markdown_within(report, readout::SUMMARY_LIMIT);
        if let Err(e) = readout::write_summary(path, &text) {
            eprintln!("benchvm: could not write the job summary: {e}");
        }
    }
    let s = &report.summary;
    let changed = s.regressed > 0 || s.improved > 0 || s.failed > 0;
    let mut comment_url = String::new();
    let mut comment_failed = false;
    match (client, flags.comment) {
        (_, CommentMode::Never) => {}
        (None, _) => eprintln!(
            "::warning title=benchvm: no comment::no github-token (and no GITHUB_TOKEN): the result is in the job summary only"
        ),
        (Some(client), mode) => {
            let body = render::markdown_within(
                report,
                render::COMMENT_LIMIT - footer.encode_utf16().count(),
            ) + &footer;
            match comment(client, actions, &body, mode, changed).await {
                Ok(Posted::Created(c)) => {
                    eprintln!("benchvm: commented: {}", c.html_url);
                    comment_url = c.html_url;
                }
                Ok(Posted::Updated(c)) => {
                    eprintln!("benchvm: updated the comment: {}", c.html_url);
                    comment_url = c.html_url;
                }
                Ok(Posted::Skipped(why)) => eprintln!("benchvm: no comment ({why})"),
                Err(e) => {
                    comment_failed = true;
                    eprintln!(
                        "::error title=benchvm: the comment failed::{e} (the report is in the job summary and in {})",
                        job.results().display()
                    );
                }
            }
        }
    }
    if let Some(path) = &actions.output {
        let outputs = [
            ("verdict", verdict_name(s.verdict).to_owned()),
            ("regressed", s.regressed.to_string()),
            ("improved", s.improved.to_string()),
            (
                "report",
                job.results().join("report.json").display().to_string(),
            ),
            ("comment-url", comment_url),
        ];
        if let Err(e) = readout::write_outputs(path, &outputs) {
            eprintln!("benchvm: could not write the step outputs: {e}");
            comment_failed = true;
        }
    }
    eprintln!("benchvm: results in {}", job.results().display());
    let fail = flags.fail_on_regression || report.fail_on_regression;
    if comment_failed || report.nothing_measured() {
        exit::INFRA
    } else if fail && s.verdict == Verdict::Regressed {
        exit::REGRESSION
    } else {
        exit::OK
    }
}

async fn comment(
    client: &Client,
    actions: &Actions,
    body: &str,
    mode: CommentMode,
    changed: bool,
) -> Result<Posted, crate::github::api::ApiError> {
    if mode == CommentMode::Never {
        return Ok(Posted::Skipped("comment: never".into()));
    }
    match readout::target(actions, client).await? {
        Some(number) => readout::post(client, number, body, mode, changed).await,
        None => Ok(Posted::Skipped(
            "no pull request for this run: job summary only".into(),
        )),
    }
}

/// A run that ended without a report: the summary says why, and an existing sticky
/// comment is replaced so it cannot pass for this commit's result.
async fn report_failure(
    flags: &ActionFlags,
    actions: &Actions,
    client: Option<&Client>,
    head: &str,
    err: &Error,
) {
    eprintln!(
        "::error title=benchvm failed::{}",
        benchvm_agent::report::inert::command_data(&err.to_string())
    );
    let text = readout::failure_comment(head, &err.to_string(), actions.run_url.as_deref());
    if let Some(path) = &actions.step_summary {
        let _ = readout::write_summary(path, &text);
    }
    if let Some(path) = &actions.output {
        let _ = readout::write_outputs(path, &[("verdict", "error".into())]);
    }
    let Some(client) = client.filter(|_| flags.comment != CommentMode::Never) else {
        return;
    };
    let number = match readout::target(actions, client).await {
        Ok(Some(n)) => n,
        _ => return,
    };
    match client.find_comment(number, render::MARKER).await {
        Ok(Some(_)) => {
            if let Err(e) = client.upsert_comment(number, render::MARKER, &text).await {
                eprintln!("benchvm: could not mark the comment as failed: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("benchvm: could not look for the comment: {e}"),
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "regressed",
        Verdict::Improved => "improved",
        Verdict::NoChange => "no-change",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// The repository input, else the workspace checkout, else the repository's URL.
fn repository(flags: &ActionFlags, actions: &Actions) -> String {
    if let Some(r) = &flags.repository {
        return match Path::new(r).is_dir() {
            true => std::path::absolute(r).map_or(r.clone(), |p| p.display().to_string()),
            false => r.clone(),
        };
    }
    match &actions.workspace {
        Some(w) if w.join(".git").exists() => w.display().to_string(),
        _ => format!("{}/{}.git", actions.server_url, actions.repository),
    }
}

/// The base and head refs: the inputs, else what the event implies (module docs).
async fn refs(
    flags: &ActionFlags,
    actions: &Actions,
    client: Option<&Client>,
    local: Option<&Path>,
) -> Result<(String, String)> {
    let head = match (&flags.head, &actions.trigger) {
        (Some(h), _) => h.clone(),
        (None, Trigger::PullRequest { head_sha, .. }) => head_sha.clone(),
        (None, _) => actions.sha.clone(),
    };
    let base = match (&flags.base, &actions.trigger) {
        (Some(b), _) => b.clone(),
        (
            None,
            Trigger::PullRequest {
                base_sha, head_sha, ..
            },
        ) => match (client, local) {
            (Some(c), _) => c
                .merge_base(base_sha, head_sha)
                .await
                .map_err(|e| Error::caused("find the pull request's merge base", e))?,
            (None, Some(repo)) => git_merge_base(repo, base_sha, head_sha)?,
            (None, None) => {
                return Err(Error::Usage(
                    "base: give it, or a github-token (or a checkout) to find the merge base"
                        .into(),
                ));
            }
        },
        // The default branch's tip, resolved once here so that every shard of a run
        // compares the same commit.
        (None, Trigger::Push { default_branch, .. } | Trigger::Dispatch { default_branch }) => {
            match client {
                Some(c) => {
                    c.compare(default_branch, &head)
                        .await
                        .map_err(|e| Error::caused(format!("resolve {default_branch}"), e))?
                        .base_tip
                }
                None => default_branch.clone(),
            }
        }
        (None, Trigger::Other { name }) => {
            return Err(Error::Usage(format!(
                "base: required for a {name} event (benchvm knows pull_request, push and workflow_dispatch)"
            )));
        }
    };
    // A checkout made by actions/checkout has the other branches as origin/<name> only.
    let local_name = |r: String| match local {
        Some(repo) if !resolves(repo, &r) && resolves(repo, &format!("origin/{r}")) => {
            format!("origin/{r}")
        }
        _ => r,
    };
    Ok((local_name(base), local_name(head)))
}

fn resolves(repo: &Path, name: &str) -> bool {
    benchvm_agent::git::commit(repo, name).is_ok_and(|c| c.is_some())
}

fn git_merge_base(repo: &Path, a: &str, b: &str) -> Result<String> {
    match benchvm_agent::git::run(Some(repo), &["merge-base", a, b]) {
        Ok(out) => Ok(out.trim().to_owned()),
        Err(benchvm_agent::git::GitError::Failed { stderr, .. }) => {
            Err(Error::infra("find the pull request's merge base", stderr))
        }
        Err(e) => Err(Error::caused("run git merge-base", e)),
    }
}

/// The host flags `benchvm run` would have been given.
fn host_flags(flags: &ActionFlags, key: Option<PathBuf>) -> HostFlags {
    HostFlags {
        choice: HostChoice {
            local: flags.backend == Backend::Local,
            ssh: flags.backend == Backend::Ssh,
            azure: flags.backend == Backend::Azure,
        },
        ssh: flags.ssh.clone(),
        ssh_key: key,
        agent_binary: None,
        timeout_minutes: flags.timeout_minutes,
        ssh_keepalive_secs: 15,
        dead_man_dir: crate::host::DEAD_MAN_DIR.into(),
        azure_flags: flags.azure.clone(),
    }
}

/// The SSH key: a path as given, or the key text written to a private file that lives
/// as long as this value.
#[derive(Debug)]
enum SshKey {
    None,
    Path(PathBuf),
    Written(tempfile::TempDir),
}

impl SshKey {
    fn from_input(input: Option<&str>) -> Result<Self> {
        let Some(text) = input.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(SshKey::None);
        };
        if !text.starts_with("-----BEGIN") {
            let path = PathBuf::from(text);
            if !path.is_file() {
                return Err(Error::Usage(
                    "ssh-key: neither a private key (-----BEGIN …) nor a file".into(),
                ));
            }
            return Ok(SshKey::Path(path));
        }
        let dir = tempfile::Builder::new()
            .prefix("benchvm-key")
            .tempdir_in(
                std::env::var_os("RUNNER_TEMP").map_or_else(std::env::temp_dir, PathBuf::from),
            )
            .map_err(|e| Error::caused("create a directory for the SSH key", e))?;
        let path = dir.path().join("id");
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::caused("write the SSH key", e))?;
        std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes())
            .map_err(|e| Error::caused("write the SSH key", e))?;
        Ok(SshKey::Written(dir))
    }

    fn path(&self) -> Option<PathBuf> {
        match self {
            SshKey::None => None,
            SshKey::Path(p) => Some(p.clone()),
            SshKey::Written(dir) => Some(dir.path().join("id")),
        }
    }
}

/// The post step (`action-cleanup`): deallocates the Azure VM whatever happened before (but
/// not when the main step left it to another run still using it);
/// nothing to do for the other backends.
pub fn cleanup(flags: ActionFlags) -> Result<i32> {
    if flags.backend != Backend::Azure {
        eprintln!(
            "benchvm: nothing to clean up for the {:?} backend",
            flags.backend
        );
        return Ok(exit::OK);
    }
    if std::env::var_os("STATE_started").is_none() {
        eprintln!("benchvm: the main step never started the VM: nothing to clean up");
        return Ok(exit::OK);
    }
    if std::env::var_os("STATE_left_to_another_run").is_some() {
        eprintln!(
            "benchvm: the main step left the VM to another run using it: that run deallocates it"
        );
        return Ok(exit::OK);
    }
    let vm = flags.azure.vm()?;
    block_on(async {
        crate::host::azure::deallocate(&vm, true, &Timeline::new()).await?;
        eprintln!("benchvm: deallocated VM {}", vm.describe());
        Ok(exit::OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ssh_key_input_is_written_privately_or_taken_as_a_path() {
        use std::os::unix::fs::PermissionsExt;
        let key = SshKey::from_input(Some(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
        ))
        .unwrap();
        let path = key.path().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .ends_with("KEY-----\n")
        );
        drop(key);
        assert!(!path.exists(), "removed with the run");
        let err = SshKey::from_input(Some("/no/such/key")).unwrap_err();
        assert!(err.to_string().starts_with("ssh-key:"), "{err}");
        assert!(SshKey::from_input(Some("  ")).unwrap().path().is_none());
    }
}
