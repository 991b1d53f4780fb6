//! Where a finished run is read: the sticky PR comment, the job summary and the step
//! outputs. Each is written independently: a comment that cannot be posted never costs
//! the summary, the outputs or the report on disk.

use std::io::Write;
use std::path::Path;

use benchvm_agent::report::{inert, render};

use super::api::{ApiError, Client, Comment};
use super::context::{Actions, Trigger};

/// When to comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CommentMode {
    /// Create or update the comment on every run.
    Always,
    /// Create it only when something regressed, improved or failed; an existing comment
    /// is still updated, so it never shows a stale result.
    OnChange,
    /// Never comment (summary and outputs only).
    Never,
}

/// The job summary's size limit (1 MiB per step).
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY`.
pub fn write_summary(path: &Path, markdown: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(markdown.as_bytes())?;
    f.write_all(b"\n")
}

/// Appends `name=value` lines to `$GITHUB_OUTPUT` (values are single-line by construction).
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        let value = value.replace(['\n', '\r'], " ");
        text.push_str(&format!("{name}={value}\n"));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// The pull request this run's comment belongs on: the PR itself, or for a push the open
/// PR of the pushed branch. `None`: the job summary only.
pub async fn target(actions: &Actions, client: &Client) -> Result<Option<u64>, ApiError> {
    match &actions.trigger {
        Trigger::PullRequest { number, .. } => Ok(Some(*number)),
        Trigger::Push { branch, .. } => client.open_pull_for_branch(branch).await,
        Trigger::Dispatch { .. } | Trigger::Other { .. } => Ok(None),
    }
}

/// What the comment step did.
#[derive(Debug)]
pub enum Posted {
    Created(Comment),
    Updated(Comment),
    /// Nothing to post to, or the mode said not to.
    Skipped(String),
}

/// Posts `body` as the sticky comment on `number` according to `mode`; `changed` says
/// whether the run found something worth a new comment.
pub async fn post(
    client: &Client,
    number: u64,
    body: &str,
    mode: CommentMode,
    changed: bool,
) -> Result<Posted, ApiError> {
    if mode == CommentMode::Never {
        return Ok(Posted::Skipped("comment: never".into()));
    }
    if mode == CommentMode::OnChange
        && !changed
        && client.find_comment(number, render::MARKER).await?.is_none()
    {
        return Ok(Posted::Skipped(
            "comment: on-change, and nothing changed".into(),
        ));
    }
    let (comment, created) = client.upsert_comment(number, render::MARKER, body).await?;
    Ok(if created {
        Posted::Created(comment)
    } else {
        Posted::Updated(comment)
    })
}

/// The comment for a run that ended without a report: it replaces a stale result.
pub fn failure_comment(head: &str, error: &str, run_url: Option<&str>) -> String {
    let link = run_url.map_or(String::new(), |u| format!(" ([workflow run]({u}))"));
    format!(
        "{}\n## benchvm: {}\n\n❌ The benchmark run failed{link}: {}\n\nNo result is shown for this commit; the previous one was replaced so it cannot be mistaken for this one.\n",
        render::MARKER,
        inert::code(head),
        inert::code(error)
    )
}
