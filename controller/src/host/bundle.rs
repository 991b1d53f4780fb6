//! Shipping the code under test as data: the two commits of a local repository packed into
//! one `git bundle`, which the agent clones like any repository. The VM needs no
//! credentials for the repository, and nothing of the head ref runs on the controller.

use std::path::Path;

use benchvm_agent::git::{self, GitError};

use crate::error::{Error, Result};

/// The commits a bundle carries, resolved from the refs the user named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundled {
    pub base: String,
    pub head: String,
}

/// Writes a bundle of `base` and `head` of the repository at `repo` to `out`.
pub fn create(repo: &Path, base: &str, head: &str, out: &Path) -> Result<Bundled> {
    let resolve = |r: &str| -> Result<String> {
        git::commit(repo, r)
            .map_err(|e| Error::caused("run git", e))?
            .ok_or_else(|| {
                Error::Usage(format!("failed to resolve ref {r:?} in {}", repo.display()))
            })
    };
    let bundled = Bundled {
        base: resolve(base)?,
        head: resolve(head)?,
    };
    // A bundle carries refs, not bare commits: name the two under benchvm's own namespace.
    for (name, commit) in [("base", &bundled.base), ("head", &bundled.head)] {
        let refname = format!("refs/benchvm/{name}");
        git(
            repo,
            &["update-ref", &refname, commit],
            "mark the commits to bundle",
        )?;
    }
    let out_str = out.display().to_string();
    git(
        repo,
        &[
            "bundle",
            "create",
            "--quiet",
            &out_str,
            "refs/benchvm/base",
            "refs/benchvm/head",
        ],
        "create the git bundle",
    )?;
    Ok(bundled)
}

fn git(repo: &Path, args: &[&str], action: &str) -> Result<()> {
    git::run(Some(repo), args).map(drop).map_err(|e| match e {
        GitError::Failed { stderr, .. } => Error::infra(action, stderr),
        spawn => Error::caused("run git", spawn),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_carries_both_commits_and_clones() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r");
        std::fs::create_dir(&repo).unwrap();
        let sh = |s: &str| benchvm_agent::test_support::sh(&repo, s);
        sh(
            "git init -q -b main && echo 1 > f && git add f && git commit -qm 1 && git checkout -qb x && echo 2 > f && git commit -qam 2",
        );
        let out = tmp.path().join("b.bundle");
        let b = create(&repo, "main", "x", &out).unwrap();
        assert_ne!(b.base, b.head);
        let clone = tmp.path().join("c.git");
        sh(&format!(
            "git clone --mirror -q {} {}",
            out.display(),
            clone.display()
        ));
        for c in [&b.base, &b.head] {
            let found = git::run(Some(&clone), &["cat-file", "-e", c]);
            assert!(found.is_ok(), "{c} in the clone: {found:?}");
        }
        let err = create(&repo, "main", "nope", &out).unwrap_err();
        assert!(err.to_string().contains("\"nope\""));
    }
}
