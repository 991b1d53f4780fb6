//! git, run for its output: one way to call it for the checkout, the selection and the
//! local loop. A directory that holds `HEAD` and no `.git` is a bare repository (a
//! mirror) and is passed as `--git-dir`; any other is a working tree (`-C`).
//!
//! git is deliberately not run through the ProcessRunner, which puts a child in its own
//! process group and kills it (and its group) when the agent is stopped: a credential or
//! host-key prompt needs the terminal's process group, ^C should reach git as SIGINT so it
//! removes its lock files, helpers it leaves running (the credential cache) must survive, and
//! the `git reset` that puts a checkout back after a stopped `validate-selection` must not be
//! killed by the stop it is cleaning up after.

use std::path::Path;
use std::process::Command;

/// Why a git command gave no output.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started (not on PATH, say).
    #[error("{0}")]
    Spawn(#[source] std::io::Error),
    /// git ran and failed; `stderr` is what it said, trimmed.
    #[error("git {command}: {stderr}")]
    Failed { command: String, stderr: String },
}

impl GitError {
    /// The last line git wrote to stderr (or the spawn error), for one-line messages.
    pub fn last_line(&self) -> String {
        match self {
            GitError::Spawn(e) => e.to_string(),
            GitError::Failed { stderr, .. } => stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(no output)")
                .trim()
                .to_owned(),
        }
    }
}

/// Runs `git args` on the repository at `repo` (none: in the current directory, for a
/// clone); returns its stdout as it came.
pub fn run(repo: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
    run_with(repo, args, &[])
}

/// [`run`], with `env` added to git's environment (the demo fixture's fixed commit dates).
pub fn run_with(
    repo: Option<&Path>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<String, GitError> {
    let mut command = Command::new("git");
    command.envs(env.iter().copied());
    if let Some(repo) = repo {
        if repo.join("HEAD").is_file() && !repo.join(".git").exists() {
            command.arg("--git-dir").arg(repo);
        } else {
            command.arg("-C").arg(repo);
        }
    }
    let out = command.args(args).output().map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The commit `reference` (a branch, tag or commit) names in `repo`; `None` when it names
/// none. Never read as an option, whatever the reference says.
pub fn commit(repo: &Path, reference: &str) -> Result<Option<String>, GitError> {
    let spec = format!("{reference}^{{commit}}");
    let args = [
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &spec,
    ];
    match run(Some(repo), &args) {
        Ok(out) => Ok(Some(out.trim().to_owned())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(spawn) => Err(spawn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sh;

    #[test]
    fn a_working_tree_and_its_bare_mirror_answer_alike_and_failures_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        sh(
            &tree,
            "git init -q -b main && echo 1 > f && git add f && git commit -qm one",
        );
        sh(tmp.path(), "git clone -q --mirror tree mirror.git");
        let head = run(Some(&tree), &["rev-parse", "HEAD"]).unwrap();
        let mirrored = run(Some(&tmp.path().join("mirror.git")), &["rev-parse", "main"]).unwrap();
        assert_eq!(head, mirrored);
        assert_eq!(head.trim().len(), 40);

        assert_eq!(commit(&tree, "main").unwrap().as_deref(), Some(head.trim()));
        assert_eq!(
            commit(&tree, "--help").unwrap(),
            None,
            "a ref is never an option"
        );
        assert_eq!(commit(&tree, "nope").unwrap(), None);

        let err = run(Some(&tree), &["rev-parse", "--verify", "nope"]).unwrap_err();
        assert!(
            err.to_string().starts_with("git rev-parse --verify nope: "),
            "{err}"
        );
        assert!(!err.last_line().is_empty() && !err.last_line().contains('\n'));
    }
}
