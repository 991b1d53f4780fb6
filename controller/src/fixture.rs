//! The demo's fixture repository, built from the files embedded at compile time: the
//! project on `main`, and the perf-branch overlay committed on `perf/speedups`.

use benchvm_agent::git::{self, GitError};
use std::path::Path;

use include_dir::{Dir, DirEntry, include_dir};

use crate::error::{Error, Result};

static FIXTURES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../fixtures");

/// The branch the overlay is committed on.
pub const HEAD_BRANCH: &str = "perf/speedups";
pub const BASE_BRANCH: &str = "main";

/// Builds a throw-away git repository at `dir` (replacing it). Commits carry fixed
/// dates, so the same fixtures always give the same commit ids.
pub fn build(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::caused(format!("remove {}", dir.display()), e))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::caused(format!("create {}", dir.display()), e))?;
    let project = FIXTURES
        .get_dir("project")
        .expect("fixtures/project is embedded");
    let overlay = FIXTURES
        .get_dir("perf-branch")
        .expect("fixtures/perf-branch is embedded");
    write_tree(project, "project", dir)?;
    git(dir, &["init", "--quiet", "--initial-branch", BASE_BRANCH])?;
    git(dir, &["add", "--all"])?;
    git(
        dir,
        &[
            "commit",
            "--quiet",
            "--message",
            "textkit: the base version",
        ],
    )?;
    git(dir, &["checkout", "--quiet", "-b", HEAD_BRANCH])?;
    write_tree(overlay, "perf-branch", dir)?;
    let message = overlay
        .get_file("perf-branch/COMMIT_MSG")
        .and_then(|f| f.contents_utf8())
        .unwrap_or("perf: planted changes");
    git(dir, &["add", "--all"])?;
    git(dir, &["commit", "--quiet", "--message", message.trim()])?;
    git(dir, &["checkout", "--quiet", BASE_BRANCH])
}

/// Writes every file under `tree` (whose paths start with `prefix/`) into `dest`,
/// skipping build litter and the overlay's commit message.
fn write_tree(tree: &Dir<'_>, prefix: &str, dest: &Path) -> Result<()> {
    for entry in tree.entries() {
        match entry {
            DirEntry::Dir(d) => write_tree(d, prefix, dest)?,
            DirEntry::File(f) => {
                let rel = f
                    .path()
                    .strip_prefix(prefix)
                    .expect("embedded under its prefix");
                let litter = rel.components().any(|c| {
                    let c = c.as_os_str().to_string_lossy();
                    c == "__pycache__"
                        || c == "build"
                        || c.ends_with(".egg-info")
                        || c.ends_with(".pyc")
                });
                if litter || rel == Path::new("COMMIT_MSG") {
                    continue;
                }
                let path = dest.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::caused(format!("create {}", parent.display()), e))?;
                }
                std::fs::write(&path, f.contents())
                    .map_err(|e| Error::caused(format!("write {}", path.display()), e))?;
            }
        }
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let identity = [
        "-c",
        "user.name=benchvm demo",
        "-c",
        "user.email=demo@benchvm.invalid",
        "-c",
        "commit.gpgsign=false",
    ];
    let date = "2026-01-01T00:00:00Z";
    let env = [("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)];
    let argv: Vec<&str> = identity.iter().chain(args).copied().collect();
    match git::run_with(Some(dir), &argv, &env) {
        Ok(_) => Ok(()),
        Err(GitError::Failed { stderr, .. }) => {
            Err(Error::infra(format!("git {}", args.join(" ")), stderr))
        }
        Err(spawn) => Err(Error::caused("run git", spawn)),
    }
}

/// The expected verdict classes for the fixture's benchmarks (fixtures/expected.json).
pub fn expected() -> Option<&'static str> {
    FIXTURES
        .get_file("expected.json")
        .and_then(|f| f.contents_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_repository_has_the_same_commit_ids_every_time() {
        let tmp = tempfile::tempdir().unwrap();
        let ids = |dir: &Path| {
            build(dir).unwrap();
            git::run(Some(dir), &["log", "--all", "--format=%H %s"]).unwrap()
        };
        let first = ids(&tmp.path().join("a"));
        assert_eq!(
            first.lines().count(),
            2,
            "the base and the perf branch: {first}"
        );
        // Built again over the first: replaced, and the same commits.
        assert_eq!(ids(&tmp.path().join("a")), first);
        assert_eq!(ids(&tmp.path().join("b")), first);
    }
}
