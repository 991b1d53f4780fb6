//! Step a of ARCHITECTURE §1: base and head as two worktrees of one persistent mirror clone, so
//! a second run fetches only what is new.

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};

/// The mirror clone of a repository in the cache.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub path: PathBuf,
    /// The mirror existed before this run (only new objects were fetched).
    pub warm: bool,
}

/// Clones `repo` (a URL or a local path) into the cache, or fetches into the existing
/// mirror. The mirror (and the calibration and survey kept beside it) is named by `name`
/// when given, else by the source: a controller that ships each run's commits as a bundle
/// of its own names the repository, so runs share one warm mirror but never one bundle.
pub fn mirror(cache: &Path, repo: &str, name: Option<&str>) -> Result<Mirror> {
    let source = match Path::new(repo).canonicalize() {
        Ok(path) if path.exists() => path.display().to_string(),
        _ => repo.to_owned(),
    };
    let key = name.unwrap_or(&source);
    let digest = Sha1::digest(key.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let stem: String = key
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = cache.join("mirrors");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let path = dir.join(format!("{stem}-{hex}.git"));
    let warm = path.join("HEAD").exists();
    if warm {
        // From this run's source: under a name, the last run's bundle is gone.
        git(
            &path,
            &["remote", "set-url", "origin", &source],
            "point the mirror at this run's source",
        )?;
        git(
            &path,
            &["fetch", "--prune", "--quiet", "origin"],
            "fetch into the mirror",
        )?;
    } else {
        // Clone beside the final path and rename: an interrupted clone never looks warm.
        let partial = dir.join(format!("{stem}-{hex}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        let partial_str = partial.display().to_string();
        match crate::git::run(
            None,
            &["clone", "--mirror", "--quiet", &source, &partial_str],
        ) {
            Ok(_) => {}
            Err(e @ crate::git::GitError::Spawn(_)) => {
                return Err(Error::caused("run git", e));
            }
            Err(e) => {
                return Err(Error::Usage(format!(
                    "failed to clone {repo}: {}",
                    e.last_line()
                )));
            }
        }
        std::fs::rename(&partial, &path).map_err(|e| Error::io("rename", &partial, e))?;
    }
    Ok(Mirror { path, warm })
}

/// The commit `reference` names in the mirror; an unknown ref is a usage error.
pub fn resolve(mirror: &Mirror, reference: &str) -> Result<String> {
    crate::git::commit(&mirror.path, reference)
        .map_err(|e| Error::caused("run git", e))?
        .ok_or_else(|| {
            Error::Usage(format!(
                "failed to resolve ref {reference:?}: no such branch, tag or commit in the repository"
            ))
        })
}

/// Checks `commit` out, detached, at `dest` (replacing what was there).
pub fn worktree(mirror: &Mirror, commit: &str, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| Error::io("remove", dest, e))?;
    }
    git(&mirror.path, &["worktree", "prune"], "prune worktrees")?;
    let dest_str = dest.display().to_string();
    git(
        &mirror.path,
        &[
            "worktree", "add", "--detach", "--force", "--quiet", &dest_str, commit,
        ],
        "add a worktree",
    )
}

fn git(git_dir: &Path, args: &[&str], action: &str) -> Result<()> {
    crate::git::run(Some(git_dir), args)
        .map(drop)
        .map_err(|e| Error::infra(action, e.last_line()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sh;

    #[test]
    fn mirror_then_worktrees_then_warm_fetch() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        sh(
            &repo,
            "git init -q -b main && echo 1 > f && git add f && git commit -qm one",
        );
        sh(
            &repo,
            "git checkout -qb perf/x && echo 2 > f && git commit -qam two",
        );
        let cache = tmp.path().join("cache");
        let m = mirror(&cache, repo.to_str().unwrap(), None).unwrap();
        assert!(!m.warm);
        let base = resolve(&m, "main").unwrap();
        let head = resolve(&m, "perf/x").unwrap();
        assert_ne!(base, head);
        let err = resolve(&m, "nope").unwrap_err();
        assert_eq!(err.process_exit_code(), crate::exit::USAGE);
        assert!(err.to_string().contains("\"nope\""), "{err}");

        let wt = tmp.path().join("work");
        worktree(&m, &base, &wt.join("base")).unwrap();
        worktree(&m, &head, &wt.join("head")).unwrap();
        worktree(&m, &base, &wt.join("base")).unwrap(); // replaces cleanly
        assert_eq!(std::fs::read_to_string(wt.join("base/f")).unwrap(), "1\n");
        assert_eq!(std::fs::read_to_string(wt.join("head/f")).unwrap(), "2\n");

        sh(&repo, "echo 3 > f && git commit -qam three");
        let m2 = mirror(&cache, repo.to_str().unwrap(), None).unwrap();
        assert!(m2.warm);
        assert_eq!(m2.path, m.path);
        assert_ne!(
            resolve(&m2, "perf/x").unwrap(),
            head,
            "fetch saw the new commit"
        );
    }

    #[test]
    fn a_named_mirror_stays_warm_when_each_run_brings_its_own_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        sh(
            &repo,
            "git init -q -b main && echo 1 > f && git add f && git commit -qm one && git bundle create -q ../one.bundle main",
        );
        sh(
            &repo,
            "echo 2 > f && git commit -qam two && git bundle create -q ../two.bundle main",
        );
        let cache = tmp.path().join("cache");
        let one = tmp.path().join("one.bundle");
        let m = mirror(&cache, one.to_str().unwrap(), Some("repo-1")).unwrap();
        let first = resolve(&m, "main").unwrap();
        std::fs::remove_file(&one).unwrap();
        let two = tmp.path().join("two.bundle");
        let m2 = mirror(&cache, two.to_str().unwrap(), Some("repo-1")).unwrap();
        assert!(m2.warm);
        assert_eq!(m2.path, m.path);
        assert_ne!(
            resolve(&m2, "main").unwrap(),
            first,
            "fetched the new bundle"
        );
        let other = mirror(&cache, two.to_str().unwrap(), Some("repo-2")).unwrap();
        assert_ne!(other.path, m.path);
    }

    #[test]
    fn a_missing_repository_is_a_usage_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = mirror(tmp.path(), "/nonexistent/repo", None).unwrap_err();
        assert_eq!(err.process_exit_code(), crate::exit::USAGE);
        assert!(!tmp.path().join("mirrors").read_dir().unwrap().any(|_| true));
    }
}
