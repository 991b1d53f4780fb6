//! What the Actions runner tells a step about its job: the `GITHUB_*` variables and the
//! event payload at `$GITHUB_EVENT_PATH`, reduced to what benchvm decides on.

use std::path::PathBuf;

use serde::Deserialize;

use super::api::RepoId;
use crate::error::{Error, Result};

/// The job's environment.
#[derive(Debug, Clone)]
pub struct Actions {
    pub repository: RepoId,
    pub api_url: String,
    pub server_url: String,
    pub sha: String,
    pub trigger: Trigger,
    /// `$GITHUB_WORKSPACE`, where a checkout of the repository may be.
    pub workspace: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
    /// The workflow run's page, for links.
    pub run_url: Option<String>,
    /// `owner/name` of the repository the code under test comes from when it is not this
    /// one, whatever the trigger: a fork's pull request, or a `workflow_run` started by one.
    pub foreign_head: Option<String>,
}

/// Why the job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    PullRequest {
        number: u64,
        base_sha: String,
        head_sha: String,
        /// `owner/name` of the head repository when it is not this one (a fork); `None`
        /// for a branch of this repository. A deleted fork reads as `"(deleted fork)"`.
        fork: Option<String>,
    },
    Push {
        branch: String,
        default_branch: String,
    },
    Dispatch {
        default_branch: String,
    },
    /// Any other event: refs must be given explicitly.
    Other {
        name: String,
    },
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    pull_request: Option<PullRequest>,
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    workflow_run: Option<WorkflowRun>,
}

#[derive(Deserialize)]
struct WorkflowRun {
    #[serde(default)]
    head_repository: Option<Repository>,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    base: End,
    head: End,
}

#[derive(Deserialize)]
struct End {
    sha: String,
    #[serde(default)]
    repo: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    default_branch: Option<String>,
}

impl Actions {
    /// Reads the job's environment through `var` (the process environment in production).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let need = |name: &str| {
            var(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::Usage(format!(
                    "{name} is not set: `benchvm action` runs inside a GitHub Actions job (use `benchvm run` elsewhere)"
                ))
            })
        };
        let repository: RepoId = need("GITHUB_REPOSITORY")?
            .parse()
            .map_err(|e| Error::Usage(format!("GITHUB_REPOSITORY: {e}")))?;
        let event_name = need("GITHUB_EVENT_NAME")?;
        let event_path = PathBuf::from(need("GITHUB_EVENT_PATH")?);
        let text = std::fs::read_to_string(&event_path)
            .map_err(|e| Error::caused(format!("read {}", event_path.display()), e))?;
        let event: Event = serde_json::from_str(&text)
            .map_err(|e| Error::caused(format!("parse {}", event_path.display()), e))?;
        let default_branch = event
            .repository
            .as_ref()
            .and_then(|r| r.default_branch.clone())
            .unwrap_or_else(|| "main".into());
        let trigger = match event_name.as_str() {
            "pull_request" | "pull_request_target" => {
                let pr = event.pull_request.ok_or_else(|| {
                    Error::infra("read the pull request event", "it has no pull_request")
                })?;
                let fork = match &pr.head.repo {
                    Some(r) if r.full_name.eq_ignore_ascii_case(&repository.to_string()) => None,
                    Some(r) => Some(r.full_name.clone()),
                    None => Some("(deleted fork)".into()),
                };
                Trigger::PullRequest {
                    number: pr.number,
                    base_sha: pr.base.sha,
                    head_sha: pr.head.sha,
                    fork,
                }
            }
            "push" => Trigger::Push {
                branch: var("GITHUB_REF")
                    .and_then(|r| r.strip_prefix("refs/heads/").map(str::to_owned))
                    .ok_or_else(|| {
                        Error::Usage("a push of a tag: benchvm compares branches".into())
                    })?,
                default_branch,
            },
            "workflow_dispatch" => Trigger::Dispatch { default_branch },
            other => Trigger::Other { name: other.into() },
        };
        let foreign_head = match &trigger {
            Trigger::PullRequest { fork, .. } => fork.clone(),
            _ => event
                .workflow_run
                .as_ref()
                .and_then(|run| match &run.head_repository {
                    Some(r) if r.full_name.eq_ignore_ascii_case(&repository.to_string()) => None,
                    Some(r) => Some(r.full_name.clone()),
                    None => Some("(deleted fork)".into()),
                }),
        };
        let server_url = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let run_url =
            var("GITHUB_RUN_ID").map(|id| format!("{server_url}/{repository}/actions/runs/{id}"));
        let path = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Ok(Actions {
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            server_url,
            sha: need("GITHUB_SHA")?,
            trigger,
            workspace: path("GITHUB_WORKSPACE"),
            step_summary: path("GITHUB_STEP_SUMMARY"),
            output: path("GITHUB_OUTPUT"),
            run_url,
            repository,
            foreign_head,
        })
    }

    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The pull request a comment belongs on, if the trigger names one directly.
    pub fn pull_number(&self) -> Option<u64> {
        match self.trigger {
            Trigger::PullRequest { number, .. } => Some(number),
            _ => None,
        }
    }
}

/// The message a refused fork run prints and puts in the summary.
pub fn fork_refusal(fork: &str) -> String {
    format!(
        "benchvm does not benchmark pull requests from forks by default: this one comes from \
         {fork}, and its code would run on your benchmark VM with whatever that VM can reach. \
         GitHub also gives fork runs no OIDC token and only a read-only GITHUB_TOKEN, so neither \
         the Azure login nor the comment could work. To benchmark it, push the branch to this \
         repository after review (or run the workflow by hand with workflow_dispatch on its \
         commit); to accept fork code on your VM anyway, set the action input allow-forks: true \
         in a workflow that has those permissions."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn actions(
        event_name: &str,
        event: serde_json::Value,
        extra: &[(&str, &str)],
    ) -> Result<Actions> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, event.to_string()).unwrap();
        let mut vars: HashMap<String, String> = [
            ("GITHUB_REPOSITORY", "octo/textkit"),
            ("GITHUB_EVENT_NAME", event_name),
            ("GITHUB_SHA", "f00d"),
            ("GITHUB_RUN_ID", "42"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.insert("GITHUB_EVENT_PATH".into(), path.display().to_string());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Actions::from_vars(|k| vars.get(k).cloned())
    }

    fn pr(head_repo: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "pull_request": {
                "number": 7,
                "base": {"sha": "b45e", "ref": "main", "repo": {"full_name": "octo/textkit"}},
                "head": {"sha": "4ead", "ref": "perf/x", "repo": head_repo}
            },
            "repository": {"full_name": "octo/textkit", "default_branch": "trunk"}
        })
    }

    #[test]
    fn a_pull_request_from_this_repository_is_not_a_fork() {
        let a = actions(
            "pull_request",
            pr(serde_json::json!({"full_name": "octo/textkit"})),
            &[],
        )
        .unwrap();
        assert_eq!(
            a.trigger,
            Trigger::PullRequest {
                number: 7,
                base_sha: "b45e".into(),
                head_sha: "4ead".into(),
                fork: None
            }
        );
        assert_eq!(
            a.run_url.as_deref(),
            Some("https://github.com/octo/textkit/actions/runs/42")
        );
    }

    #[test]
    fn forks_and_deleted_forks_are_named() {
        let a = actions(
            "pull_request",
            pr(serde_json::json!({"full_name": "mallory/textkit"})),
            &[],
        )
        .unwrap();
        assert!(
            matches!(a.trigger, Trigger::PullRequest { fork: Some(f), .. } if f == "mallory/textkit")
        );
        let a = actions("pull_request", pr(serde_json::Value::Null), &[]).unwrap();
        assert!(
            matches!(a.trigger, Trigger::PullRequest { fork: Some(f), .. } if f == "(deleted fork)")
        );
    }

    #[test]
    fn pushes_name_their_branch_and_the_default_branch() {
        let event = serde_json::json!({"repository": {"full_name": "octo/textkit", "default_branch": "trunk"}});
        let a = actions(
            "push",
            event.clone(),
            &[("GITHUB_REF", "refs/heads/perf/faster")],
        )
        .unwrap();
        assert_eq!(
            a.trigger,
            Trigger::Push {
                branch: "perf/faster".into(),
                default_branch: "trunk".into()
            }
        );
        let err = actions("push", event, &[("GITHUB_REF", "refs/tags/v1")]).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err}");
    }

    #[test]
    fn outside_actions_the_error_says_what_is_missing() {
        let err = Actions::from_vars(|_| None).unwrap_err();
        assert!(err.to_string().contains("GITHUB_REPOSITORY"), "{err}");
    }
}
