//! `validate-selection --replay A..B` (issue 17): the selection checked against a real
//! repository's history. For each commit C of `A..B` (first parents, oldest first), the
//! suite is selected against the survey of C's parent, as a comparison would select it
//! (hot code included), and checked against a truth that does not use the selection's
//! block fingerprints:
//!
//! - C's line coverage (coverage.py) of each benchmark, intersected with the lines the
//!   commit added or changed, and the parent's with the lines it removed;
//! - the data files each benchmark read, against the files the commit changed;
//! - each benchmark's outcome (the repr of one call, or its error) before and after.
//!
//! A benchmark the truth calls affected but the selection skipped is missed. The survey of
//! C, made for the truth, is the next commit's parent survey, so each commit is surveyed
//! once. The checkout is put back where it was however the replay ends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::impacted::{self, Hotfiles, Options};
use super::local_loop::{self, Project, git, short};
use super::store::Survey;
use super::{fingerprint, survey};
use crate::error::{Error, Result};

/// What one commit did to the suite.
#[derive(Debug, Clone, Serialize)]
pub struct CommitResult {
    pub commit: String,
    pub subject: String,
    /// Benchmarks surveyed at both the parent and the commit.
    pub total: usize,
    /// Benchmarks of the commit that the parent did not have (they run anyway).
    pub new: usize,
    pub selected: Vec<String>,
    /// Benchmark → why the truth calls it affected.
    pub affected: BTreeMap<String, String>,
    /// Affected but not selected.
    pub missed: Vec<String>,
    /// When everything was selected: the reason most benchmarks gave.
    pub everything: Option<String>,
    /// Benchmarks whose coverage could not be trusted at the parent.
    pub untrusted: usize,
    /// Seconds to survey the commit (the whole suite once, under coverage).
    pub survey_seconds: f64,
    /// Milliseconds to read the changes and select.
    pub select_millis: f64,
}

/// One commit, surveyed.
struct Snapshot {
    commit: String,
    survey: Survey,
    /// Benchmark → checkout-relative file → covered lines.
    lines: BTreeMap<String, BTreeMap<String, BTreeSet<u32>>>,
    /// Benchmark → the checkout's files it read as data.
    read: BTreeMap<String, BTreeSet<String>>,
    /// Benchmark → its outcome (`error: …` when it failed).
    outcomes: BTreeMap<String, String>,
    seconds: f64,
}

/// Replays `range` (`A..B`) on the checkout of `p`, which must be clean.
pub fn replay(
    p: &Project,
    range: &str,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<CommitResult>> {
    if !range.contains("..") || range.contains("...") {
        return Err(Error::Usage(format!(
            "--replay {range}: give a range A..B (the commits after A up to B)"
        )));
    }
    let dirty = git(&p.source_root, &["status", "--porcelain"])?;
    if dirty.lines().any(|l| !l.contains(".benchvm/")) {
        return Err(Error::Usage(format!(
            "--replay checks out each commit in {}: commit or stash its changes first",
            p.source_root.display()
        )));
    }
    let commits: Vec<String> = git(
        &p.source_root,
        &["rev-list", "--reverse", "--first-parent", range, "--"],
    )
    .map_err(|e| Error::Usage(format!("--replay {range}: {e}")))?
    .lines()
    .map(str::to_owned)
    .collect();
    if commits.is_empty() {
        return Err(Error::Usage(format!(
            "--replay {range}: no commits in range"
        )));
    }
    let _back = Restore::new(&p.source_root)?;
    crate::heartbeat::let_the_run_wind_down();
    let scratch = tempfile::tempdir().map_err(|e| Error::io("create", "a scratch dir", e))?;
    let rec = survey::Recorder::install(scratch.path())?;
    let mut parent: Option<Snapshot> = None;
    let mut results = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let parent_commit = git(&p.source_root, &["rev-parse", &format!("{commit}^")])?;
        let before = match parent.take() {
            Some(s) if s.commit == parent_commit => s,
            _ => {
                progress(format!("surveying the parent {}", short(&parent_commit)));
                snapshot(p, &rec, &parent_commit, progress)?
            }
        };
        let subject = git(&p.source_root, &["log", "-1", "--format=%s", commit])?;
        progress(format!(
            "commit {}/{}: {} {}",
            i + 1,
            commits.len(),
            short(commit),
            subject
        ));
        let after = snapshot(p, &rec, commit, progress)?;
        let started = Instant::now();
        let changes = local_loop::name_status(
            &git(
                &p.source_root,
                &["diff", "--name-status", "-M", &parent_commit, commit],
            )?,
            &p.source_root,
        );
        let opts = Options {
            // Computed by the survey of this same checkout.
            environment_hash: after.survey.environment_hash.clone(),
            hotfile_threshold: super::in_compare::HOTFILE_THRESHOLD,
            hotfiles: Hotfiles::Include,
        };
        let selection = impacted::select(&before.survey, &changes, &opts);
        let select_millis = started.elapsed().as_secs_f64() * 1e3;
        let diff = git(
            &p.source_root,
            &[
                "diff",
                "-U0",
                "-M",
                "--no-color",
                "--no-ext-diff",
                &parent_commit,
                commit,
            ],
        )?;
        let changed = changed_lines(&diff);
        let changed_files: BTreeSet<&str> = changes.iter().flat_map(|c| c.paths()).collect();
        let mut affected = BTreeMap::new();
        let mut new = 0;
        for b in &after.survey.benchmarks {
            let id = &b.benchmark;
            if !before.outcomes.contains_key(id) {
                new += 1;
                continue;
            }
            if let Some(why) = truth(&before, &after, id, &changed, &changed_files) {
                affected.insert(id.clone(), why);
            }
        }
        let selected: Vec<String> = selection
            .selected()
            .filter(|id| after.outcomes.contains_key(*id))
            .map(str::to_owned)
            .collect();
        let total = before
            .survey
            .benchmarks
            .iter()
            .filter(|b| after.outcomes.contains_key(&b.benchmark))
            .count();
        let missed = affected
            .keys()
            .filter(|id| !selected.contains(id))
            .cloned()
            .collect();
        let everything = (total > 0 && selected.len() == total)
            .then(|| most_common_reason(&selection))
            .flatten();
        results.push(CommitResult {
            commit: commit.clone(),
            subject,
            total,
            new,
            selected,
            affected,
            missed,
            everything,
            untrusted: before
                .survey
                .benchmarks
                .iter()
                .filter(|b| b.always_affected.is_some())
                .count(),
            survey_seconds: after.seconds,
            select_millis,
        });
        parent = Some(after);
    }
    Ok(results)
}

/// Why the truth calls benchmark `id` affected by the change from `before` to `after`.
fn truth(
    before: &Snapshot,
    after: &Snapshot,
    id: &str,
    changed: &Changed,
    changed_files: &BTreeSet<&str>,
) -> Option<String> {
    let hit = |lines: &BTreeMap<String, BTreeMap<String, BTreeSet<u32>>>,
               side: &BTreeMap<String, BTreeSet<u32>>| {
        lines.get(id)?.iter().find_map(|(file, covered)| {
            let line = side.get(file)?.intersection(covered).next()?;
            Some(format!("{file}:{line}"))
        })
    };
    if let Some(at) = hit(&after.lines, &changed.added) {
        return Some(format!("runs changed line {at}"));
    }
    if let Some(at) = hit(&before.lines, &changed.removed) {
        return Some(format!("ran removed line {at}"));
    }
    let read = before.read.get(id).into_iter().chain(after.read.get(id));
    if let Some(file) = read.flatten().find(|f| changed_files.contains(f.as_str())) {
        return Some(format!("reads {file}, which changed"));
    }
    let (was, now) = (before.outcomes.get(id)?, after.outcomes.get(id)?);
    (was != now).then(|| format!("outcome {} → {}", cut(was), cut(now)))
}

fn cut(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// The reason most benchmarks of a select-everything give for running.
fn most_common_reason(selection: &impacted::Selection) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &selection.decisions {
        if let Some(r) = d.reasons.first() {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| r.to_owned())
}

/// The lines a diff touches: new-side lines added or changed, old-side lines removed or
/// changed, by path on each side.
#[derive(Debug, Default, PartialEq)]
struct Changed {
    added: BTreeMap<String, BTreeSet<u32>>,
    removed: BTreeMap<String, BTreeSet<u32>>,
}

/// Reads `git diff -U0` output.
fn changed_lines(diff: &str) -> Changed {
    let mut out = Changed::default();
    let (mut old, mut new): (Option<String>, Option<String>) = (None, None);
    let path = |s: &str, prefix: &str| s.strip_prefix(prefix).map(str::to_owned);
    for line in diff.lines() {
        if line.starts_with("diff --git ") {
            (old, new) = (None, None);
        } else if let Some(rest) = line.strip_prefix("--- ") {
            old = path(rest, "a/");
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            new = path(rest, "b/");
        } else if let Some(hunk) = line.strip_prefix("@@ ") {
            let mut fields = hunk.split_whitespace();
            let range = |f: Option<&str>, sign: char| -> Option<(u32, u32)> {
                let r = f?.strip_prefix(sign)?;
                let (start, len) = match r.split_once(',') {
                    Some((s, n)) => (s.parse().ok()?, n.parse().ok()?),
                    None => (r.parse().ok()?, 1),
                };
                Some((start, len))
            };
            let (Some(o), Some(n)) = (range(fields.next(), '-'), range(fields.next(), '+')) else {
                continue;
            };
            if let Some(file) = &old {
                out.removed
                    .entry(file.clone())
                    .or_default()
                    .extend(o.0..o.0 + o.1);
            }
            if let Some(file) = &new {
                out.added
                    .entry(file.clone())
                    .or_default()
                    .extend(n.0..n.0 + n.1);
            }
        }
    }
    out
}

/// Checks out `commit` and surveys every benchmark of the suite there.
fn snapshot(
    p: &Project,
    rec: &survey::Recorder,
    commit: &str,
    progress: &mut dyn FnMut(String),
) -> Result<Snapshot> {
    git(&p.source_root, &["checkout", "-q", "--detach", commit])?;
    let started = Instant::now();
    let listed = local_loop::list(p, &rec.asv_harness)?;
    let map = survey::SourceMap::checkout(&p.source_root);
    let mut snap = Snapshot {
        commit: commit.to_owned(),
        survey: Survey {
            commit: commit.to_owned(),
            dirty: vec![],
            environment_hash: crate::python::environment_hash(&p.python, &p.source_root)?,
            normaliser_version: fingerprint::NORMALISER_VERSION,
            benchmarks: Vec::new(),
        },
        lines: BTreeMap::new(),
        read: BTreeMap::new(),
        outcomes: BTreeMap::new(),
        seconds: 0.0,
    };
    let short = short(commit).to_owned();
    let raws = local_loop::survey_listed(p, rec, &listed, &mut |line| {
        progress(format!("  {short}: {line}"))
    })?;
    for (id, raw) in listed.ids.iter().zip(raws) {
        let lines = raw
            .files
            .iter()
            .filter_map(|(f, l)| Some((map.to_source(f)?, l.iter().copied().collect())))
            .collect();
        let read = raw.opened.iter().filter_map(|f| map.to_source(f)).collect();
        let outcome = match (&raw.outcome, &raw.error) {
            (_, Some(e)) => format!("error: {e}"),
            (Some(o), None) => o.clone(),
            (None, None) => "no outcome".into(),
        };
        snap.survey
            .benchmarks
            .push(survey::surveyed(id, &raw, &map));
        snap.lines.insert(id.clone(), lines);
        snap.read.insert(id.clone(), read);
        snap.outcomes.insert(id.clone(), outcome);
    }
    snap.seconds = started.elapsed().as_secs_f64();
    Ok(snap)
}

/// Checks the checkout out where it was (its branch, or its commit) when dropped.
struct Restore<'a> {
    root: &'a Path,
    to: String,
}

impl<'a> Restore<'a> {
    fn new(root: &'a Path) -> Result<Self> {
        let to = match git(root, &["symbolic-ref", "-q", "--short", "HEAD"]) {
            Ok(branch) if !branch.is_empty() => branch,
            _ => git(root, &["rev-parse", "HEAD"])?,
        };
        Ok(Self { root, to })
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = git(self.root, &["checkout", "-q", &self.to]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_context_diff_gives_the_lines_each_side_touches() {
        let diff = "diff --git a/pkg/a.py b/pkg/a.py\nindex 1..2 100644\n--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -3 +3 @@ def f():\n-    return 1\n+    return 2\n@@ -10,2 +9,0 @@\n-x\n-y\n@@ -20,0 +19,3 @@\n+a\n+b\n+c\ndiff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\ndiff --git a/old.py b/gone.py\nsimilarity index 80%\nrename from old.py\nrename to gone.py\n--- a/old.py\n+++ b/gone.py\n@@ -5 +5 @@\n-q\n+r\n";
        let c = changed_lines(diff);
        let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        assert_eq!(c.added["pkg/a.py"], set(&[3, 19, 20, 21]));
        assert_eq!(c.removed["pkg/a.py"], set(&[3, 10, 11]));
        assert_eq!(c.added["new.py"], set(&[1, 2]));
        assert!(!c.removed.contains_key("new.py"), "{c:?}");
        assert_eq!(c.removed["old.py"], set(&[5]));
        assert_eq!(c.added["gone.py"], set(&[5]));
    }
}
