//! The local loop of ARCHITECTURE §4: `survey` once, then `impacted` after each edit. Both work
//! on a checkout (`--source-root`) with the interpreter that has the project installed
//! (`--python`), and keep everything in one SQLite file ([`super::store`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::impacted::{self, FileChange, Hotfiles, Options, Selection};
use super::store::{Baseline, StepResult, Store, Survey, Timing};
use super::{fingerprint, survey};
use crate::error::{Error, Result};
use crate::measure::runner::{SystemRunner, capture};

/// How long one benchmark may take under coverage.
pub(crate) const SURVEY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Where to look and with what.
#[derive(Debug, Clone)]
pub struct Project {
    pub source_root: PathBuf,
    /// The ASV-style suite directory.
    pub suite: PathBuf,
    /// The interpreter with the project (and coverage.py) installed.
    pub python: PathBuf,
    pub database: PathBuf,
    /// Timed runs of each benchmark per round, for the baseline and for each step.
    pub repeat: u32,
    /// Rounds of timed runs: each round runs every benchmark being timed `repeat` times,
    /// one benchmark after the other, so a benchmark gets `rounds × repeat` samples.
    pub rounds: u32,
    /// How long each timed process runs a `time_*` benchmark untimed before timing it.
    pub warmup: Duration,
}

/// Surveys every benchmark of the suite, unless the stored survey is of this commit and
/// environment (`force` redoes it). Returns the survey and whether it was reused.
pub fn survey(
    p: &Project,
    force: bool,
    progress: &mut dyn FnMut(String),
) -> Result<(Survey, bool)> {
    let mut store = match Store::open(&p.database) {
        // A database of another schema holds nothing this version can use: --force
        // starts it afresh (its steps go with it).
        Err(super::store::StoreError::Schema { found, .. }) if force => {
            progress(format!(
                "{} has schema {found}: starting it afresh",
                p.database.display()
            ));
            for suffix in ["", "-wal", "-shm"] {
                let mut name = p.database.clone().into_os_string();
                name.push(suffix);
                match std::fs::remove_file(&name) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io("remove", PathBuf::from(name), e));
                    }
                    _ => {}
                }
            }
            open(p)?
        }
        other => other.map_err(store_err)?,
    };
    let commit = git(&p.source_root, &["rev-parse", "HEAD"])?;
    let env = crate::python::environment_hash(&p.python, &p.source_root)?;
    if !force
        && let Some(s) = store.survey().map_err(store_err)?
        && s.commit == commit
        && s.environment_hash == env
        && s.normaliser_version == fingerprint::NORMALISER_VERSION
    {
        progress(format!(
            "the survey of {} is current (--force redoes it)",
            short(&commit)
        ));
        return Ok((s, true));
    }
    let dirty = dirty(&p.source_root)?;
    if !dirty.is_empty() {
        progress(format!(
            "{} file(s) differ from {} (uncommitted or untracked): surveyed as they are now, they count as changed until the next survey",
            dirty.len(),
            short(&commit)
        ));
    }
    let work = tempfile::tempdir().map_err(|e| Error::io("create", "a scratch directory", e))?;
    let rec = survey::Recorder::install(work.path())?;
    let listed = list(p, &rec.asv_harness)?;
    for (module, error) in &listed.broken {
        progress(format!(
            "cannot import {module}: {error}; its benchmarks are not surveyed"
        ));
    }
    let map = survey::SourceMap::checkout(&p.source_root);
    let raws = survey_listed(p, &rec, &listed, progress)?;
    let ids = listed.ids;
    let mut benchmarks = Vec::new();
    // Indices of the benchmarks whose survey ran: only those get a baseline timing.
    let mut timed = Vec::new();
    for (i, (id, raw)) in ids.iter().zip(&raws).enumerate() {
        if raw.error.is_none() {
            timed.push(i);
        }
        benchmarks.push(survey::surveyed(id, raw, &map));
    }
    let timed_ids: Vec<String> = timed.iter().map(|&i| ids[i].clone()).collect();
    let timings = time(p, &rec.asv_harness, &timed_ids, progress)?;
    for (i, timed) in timed.into_iter().zip(timings) {
        // A benchmark that skips itself or fails when timed has no baseline.
        let Ok((timing, unit)) = timed else { continue };
        benchmarks[i].baseline = Some(Baseline {
            unit,
            timing,
            // `repeat` counts the fresh-process samples behind the timing, all rounds.
            repeat: p.rounds.saturating_mul(p.repeat),
            number: 1,
        });
    }
    let survey = Survey {
        commit,
        dirty,
        environment_hash: env,
        normaliser_version: fingerprint::NORMALISER_VERSION,
        benchmarks,
    };
    // One transaction: killed before this line, the previous survey is still whole.
    store.replace_survey(&survey).map_err(store_err)?;
    Ok((survey, false))
}

/// What changed since the survey: `explicit` paths (relative to the source root), or with
/// none, git's view: commits since the surveyed one, staged and unstaged edits, renames
/// and untracked files.
pub fn changes(p: &Project, survey: &Survey, explicit: &[String]) -> Result<Vec<FileChange>> {
    if !explicit.is_empty() {
        return explicit
            .iter()
            .map(|f| {
                Ok(read_change(
                    &p.source_root,
                    &in_checkout(&p.source_root, f)?,
                ))
            })
            .collect();
    }
    let diff = git(
        &p.source_root,
        &["diff", "--name-status", "-M", &survey.commit],
    )?;
    let mut out = name_status(&diff, &p.source_root);
    out.extend(
        untracked(&p.source_root)?
            .iter()
            .map(|l| read_change(&p.source_root, l)),
    );
    // Files surveyed with uncommitted content: changed unless shown already.
    for path in &survey.dirty {
        if !out.iter().any(|c| c.paths().contains(&path.as_str())) {
            out.push(read_change(&p.source_root, path));
        }
    }
    Ok(out)
}

/// Untracked files git does not ignore, except in `.benchvm/` (the database's default
/// home) and in a venv kept in the checkout: neither is the project's code.
fn untracked(root: &Path) -> Result<Vec<String>> {
    let listed = git(root, &["ls-files", "--others", "--exclude-standard"])?;
    let foreign: Vec<String> = survey::foreign_dirs(root)
        .into_iter()
        .map(|d| format!("{d}/"))
        .collect();
    Ok(listed
        .lines()
        .filter(|l| !l.is_empty() && !foreign.iter().any(|d| l.starts_with(d.as_str())))
        .map(str::to_owned)
        .collect())
}

/// What differs from HEAD in the checkout: tracked files with uncommitted edits (deleted
/// ones included) and untracked files.
fn dirty(root: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = git(root, &["diff", "--name-only", "HEAD"])?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    out.extend(untracked(root)?);
    Ok(out)
}

/// The changes `git diff --name-status -M` lists, with the new contents read from `tree`.
pub fn name_status(diff: &str, tree: &Path) -> Vec<FileChange> {
    let mut out = Vec::new();
    for line in diff.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [status, from, to] if status.starts_with('R') => out.push(FileChange::Renamed {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            }),
            [status, path] if status.starts_with('D') => out.push(FileChange::Deleted {
                path: (*path).to_owned(),
            }),
            [_, path] => out.push(read_change(tree, path)),
            _ => {}
        }
    }
    out
}

/// A `--changed-files` path as the survey names files: relative to the source root,
/// `/`-separated, without `.` or `..` (`./src/a.py`, `/abs/root/src/a.py` and
/// `src/x/../a.py` are all `src/a.py`). A path outside the checkout is an error.
pub fn in_checkout(root: &Path, path: &str) -> Result<String> {
    let outside = || {
        Error::Usage(format!(
            "--changed-files {path}: not inside --source-root {}",
            root.display()
        ))
    };
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        p.strip_prefix(&canonical)
            .or_else(|_| p.strip_prefix(&absolute))
            .map_err(|_| outside())?
    } else {
        p
    };
    normalised(rel).ok_or_else(outside)
}

/// A relative path without `.` or `..`, `/`-separated, if it names something strictly
/// inside the directory it is relative to (`a/../b` is `b`; `..`, `.` and `/x` are not).
pub fn normalised(rel: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_str()?),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn read_change(tree: &Path, path: &str) -> FileChange {
    // A checkout may be someone else's: a link to /dev/zero or a FIFO is a change that
    // cannot be read (so unparsed), not a read without end.
    let read = crate::side_file::read(
        &tree.join(path),
        crate::side_file::LARGE,
        crate::side_file::Links::Follow,
    );
    match read {
        Ok(bytes) => FileChange::Changed {
            path: path.to_owned(),
            text: String::from_utf8(bytes).ok(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileChange::Deleted {
            path: path.to_owned(),
        },
        Err(_) => FileChange::Changed {
            path: path.to_owned(),
            text: None,
        },
    }
}

/// The id a step's results were recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    /// The id was given and already recorded: its earlier results were replaced.
    pub replaced: bool,
}

/// Selects, runs the selected benchmarks and records the step under `step_id`, or with
/// none under a new `step-<unix time>` id (`-2`, `-3`… when two steps share a second).
pub fn impacted(
    p: &Project,
    explicit: &[String],
    hotfile_threshold: f64,
    step_id: Option<&str>,
    progress: &mut dyn FnMut(String),
) -> Result<(Selection, Step, Vec<StepResult>)> {
    if !p.database.is_file() {
        return Err(Error::Usage(format!(
            "{} does not exist: run `benchvm-agent survey` first",
            p.database.display()
        )));
    }
    let mut store = open(p)?;
    let survey = store.survey().map_err(store_err)?.ok_or_else(|| {
        Error::Usage(format!(
            "{} holds no survey: run `benchvm-agent survey` first",
            p.database.display()
        ))
    })?;
    let step = match step_id {
        Some(id) => Step {
            id: id.to_owned(),
            replaced: store.has_step(id).map_err(store_err)?,
        },
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut id = format!("step-{secs}");
            let mut n = 1;
            while store.has_step(&id).map_err(store_err)? {
                n += 1;
                id = format!("step-{secs}-{n}");
            }
            Step {
                id,
                replaced: false,
            }
        }
    };
    let changed = changes(p, &survey, explicit)?;
    let opts = Options {
        environment_hash: crate::python::environment_hash(&p.python, &p.source_root)?,
        hotfile_threshold,
        hotfiles: Hotfiles::Exclude,
    };
    let mut selection = impacted::select(&survey, &changed, &opts);
    let work = tempfile::tempdir().map_err(|e| Error::io("create", "a scratch directory", e))?;
    let harness = crate::layers::asv::install_harness(work.path())?;
    match list(p, &harness) {
        Ok(listed) => against_the_suite(&mut selection, &listed),
        Err(e) => {
            // The last line of a traceback says what went wrong.
            let e = e.to_string();
            let last = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            progress(format!(
                "cannot list the suite ({}), so benchmarks added since the survey are not run",
                last.trim()
            ))
        }
    }
    let run: Vec<String> = selection
        .decisions
        .iter()
        .filter(|d| d.run)
        .map(|d| d.benchmark.clone())
        .collect();
    let mut timings = time(p, &harness, &run, progress)?.into_iter();
    let mut results = Vec::new();
    for d in &selection.decisions {
        let mut reason = d.reasons.join("; ");
        let mut unit = None;
        let mut failure = None;
        let timing = match d
            .run
            .then(|| timings.next().expect("a timing per benchmark run"))
        {
            Some(Ok((timing, u))) => {
                unit = Some(u);
                Some(timing)
            }
            Some(Err(why)) => {
                reason.push_str(&format!("; not timed: {why}"));
                // A benchmark that skips itself (NotImplementedError) did not fail.
                failure = (!why.starts_with("skipped")).then(|| why.to_string());
                None
            }
            None => None,
        };
        let base = survey
            .benchmarks
            .iter()
            .find(|b| b.benchmark == d.benchmark)
            .and_then(|b| b.baseline.as_ref());
        results.push(StepResult {
            benchmark: d.benchmark.clone(),
            ran: d.run,
            reason,
            baseline: base.map(|b| b.timing.median),
            unit: unit
                .or_else(|| base.map(|b| b.unit.clone()))
                .unwrap_or_else(|| "s".into()),
            timing,
            delta_percent: timing
                .zip(base)
                .map(|(t, b)| (t.median / b.timing.median - 1.0) * 100.0),
            failure,
        });
    }
    store.record_step(&step.id, &results).map_err(store_err)?;
    Ok((selection, step, results))
}

fn open(p: &Project) -> Result<Store> {
    Store::open(&p.database).map_err(store_err)
}

fn store_err(e: super::store::StoreError) -> Error {
    if let super::store::StoreError::Sqlite { path, source } = &e
        && source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase)
    {
        return Error::Usage(format!(
            "--database {path}: not a SQLite database (move it away, or name another file)"
        ));
    }
    Error::caused("use the selection database", e)
}

pub(crate) fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Runs git in the checkout `dir`; its stdout, trimmed. A failure is the user's to fix
/// (their checkout), so it is a usage error that says what git said.
pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<String> {
    match crate::git::run(Some(dir), args) {
        Ok(out) => Ok(out.trim().to_owned()),
        Err(e @ crate::git::GitError::Spawn(_)) => Err(Error::caused("run git", e)),
        Err(e) => Err(Error::Usage(e.to_string())),
    }
}

/// The suite's benchmark ids, and the modules that could not be imported (module, error).
pub(crate) struct Listed {
    pub ids: Vec<String>,
    /// The module of each id (relative to the suite), in the same order.
    pub modules: Vec<String>,
    pub broken: Vec<(String, String)>,
}

impl Listed {
    /// Runs of consecutive ids of one module, as (module, indices into `ids`).
    pub fn by_module(&self) -> Vec<(&str, std::ops::Range<usize>)> {
        let mut out: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        for (i, m) in self.modules.iter().enumerate() {
            match out.last_mut() {
                Some((last, range)) if *last == m.as_str() => range.end = i + 1,
                _ => out.push((m.as_str(), i..i + 1)),
            }
        }
        out
    }
}

/// Surveys every listed benchmark, a module at a time (`survey::run_each`); `progress`
/// hears how far it got.
pub(crate) fn survey_listed(
    p: &Project,
    rec: &survey::Recorder,
    listed: &Listed,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<survey::Raw>> {
    let include = [p.source_root.clone()];
    let target = survey::Target {
        argv: vec![],
        cwd: &p.source_root,
        env: &[],
        include: &include,
        python_path: &[],
        timeout: SURVEY_TIMEOUT,
        writable: None,
    };
    let mut raws = Vec::with_capacity(listed.ids.len());
    for (module, range) in listed.by_module() {
        progress(format!(
            "surveying {} benchmark(s) of {module} ({}/{})",
            range.len(),
            range.end,
            listed.ids.len()
        ));
        raws.extend(survey::run_each(
            &SystemRunner,
            rec,
            &target,
            &p.python.display().to_string(),
            &p.suite,
            module,
            &listed.ids[range],
        )?);
        if crate::heartbeat::stop_requested() {
            return Err(Error::infra("finish the survey", "stopped by a signal"));
        }
    }
    Ok(raws)
}

pub(crate) fn list(p: &Project, asv_harness: &Path) -> Result<Listed> {
    #[derive(serde::Deserialize)]
    struct Listing {
        benchmarks: Vec<Entry>,
        errors: Vec<Broken>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
        module: String,
    }
    #[derive(serde::Deserialize)]
    struct Broken {
        module: String,
        error: String,
    }
    let argv = vec![
        p.python.display().to_string(),
        asv_harness.display().to_string(),
        "list".into(),
        p.suite.display().to_string(),
    ];
    let out = capture(
        &SystemRunner,
        argv,
        &p.source_root,
        &[],
        SURVEY_TIMEOUT,
        None,
    )
    .map_err(|e| Error::caused(format!("run {}", p.python.display()), e))?;
    let not_listed = |last: &str| {
        // A missing module usually means the project is not installed for --python.
        let hint = if last.starts_with("ModuleNotFoundError") {
            format!(
                " (is the project installed for --python {}?)",
                p.python.display()
            )
        } else {
            String::new()
        };
        Error::infra(
            format!("list the suite in {}", p.suite.display()),
            format!("{last}{hint}"),
        )
    };
    if let Some(failure) = out.outcome.failure() {
        // A traceback's last line says what went wrong.
        let last = out.stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(not_listed(last.unwrap_or(&failure).trim()));
    }
    // The listing is the last line: a suite may print while it is imported.
    let last = out
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let listed: Listing =
        serde_json::from_str(last).map_err(|e| Error::caused("read the suite's list", e))?;
    if listed.benchmarks.is_empty()
        && let Some(first) = listed.errors.first()
    {
        return Err(not_listed(&first.error));
    }
    Ok(Listed {
        ids: listed.benchmarks.iter().map(|l| l.id.clone()).collect(),
        modules: listed.benchmarks.into_iter().map(|l| l.module).collect(),
        broken: listed
            .errors
            .into_iter()
            .map(|b| (b.module, b.error))
            .collect(),
    })
}

/// Squares a selection made from the survey with the suite as it is now: a benchmark added
/// since runs (nothing is known of it), one removed since is skipped.
fn against_the_suite(selection: &mut Selection, listed: &Listed) {
    let ids = &listed.ids;
    for d in &mut selection.decisions {
        if ids.contains(&d.benchmark) {
            continue;
        }
        // A benchmark of a module that no longer imports runs, and fails where it shows.
        let broken = listed.broken.iter().find(|(module, _)| {
            module.is_empty() || d.benchmark.starts_with(&format!("{module}."))
        });
        match broken {
            Some((module, error)) => {
                d.run = true;
                d.reasons = vec![format!("its module {module} cannot be imported: {error}")];
            }
            None => {
                d.run = false;
                d.reasons = vec!["it is no longer in the suite".into()];
            }
        }
    }
    for id in ids {
        if !selection.decisions.iter().any(|d| &d.benchmark == id) {
            selection.decisions.push(impacted::Decision {
                benchmark: id.clone(),
                run: true,
                reasons: vec!["it is new since the survey (no coverage recorded)".into()],
            });
        }
    }
    selection
        .decisions
        .sort_by(|a, b| a.benchmark.cmp(&b.benchmark));
}

/// Times `ids` in `p.rounds` rounds; each round runs every benchmark `p.repeat` times, one
/// benchmark after the other, so slow drift of the machine spreads over all of them
/// instead of landing on the last ones. Returns each benchmark's timing and unit, in order,
/// or why it could not be timed (it skipped itself, or failed; it is not sampled again).
pub(crate) fn time(
    p: &Project,
    asv_harness: &Path,
    ids: &[String],
    progress: &mut dyn FnMut(String),
) -> Result<Vec<std::result::Result<(Timing, String), String>>> {
    let mut samples: Vec<(Vec<f64>, String)> =
        ids.iter().map(|_| (Vec::new(), "s".to_owned())).collect();
    let mut failed: Vec<Option<String>> = vec![None; ids.len()];
    for round in 1..=p.rounds {
        for (i, (id, (values, unit))) in ids.iter().zip(&mut samples).enumerate() {
            if failed[i].is_some() {
                continue;
            }
            let of_rounds = if p.rounds > 1 {
                format!(", round {round}/{}", p.rounds)
            } else {
                String::new()
            };
            progress(format!("timing {id} ({}/{}{of_rounds})", i + 1, ids.len()));
            for _ in 0..p.repeat.max(1) {
                match sample(p, asv_harness, id)? {
                    Ok((value, u)) => {
                        values.push(value);
                        *unit = u;
                    }
                    Err(why) => {
                        failed[i] = Some(why);
                        break;
                    }
                }
            }
        }
    }
    Ok(samples
        .into_iter()
        .zip(failed)
        .map(|((values, unit), failed)| match failed {
            Some(why) => Err(why),
            None => Ok((timing(values), unit)),
        })
        .collect())
}

/// Runs `argv` through the runner (its own process group, so ^C or SIGTERM to the agent
/// kills it too; at most [`SURVEY_TIMEOUT`]) and returns its outcome, stdout and stderr;
/// refuses to start, or to report, once the agent has been asked to stop.
pub(crate) fn run_captured(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
) -> Result<(crate::measure::runner::RunOutcome, String, String)> {
    let stopped = || Error::infra("finish the run", "stopped by a signal");
    if crate::heartbeat::stop_requested() {
        return Err(stopped());
    }
    let out = capture(&SystemRunner, argv.to_vec(), cwd, env, SURVEY_TIMEOUT, None)
        .map_err(|e| Error::caused(format!("run {}", argv[0]), e))?;
    if crate::heartbeat::stop_requested() {
        return Err(stopped());
    }
    Ok((out.outcome, out.stdout, out.stderr))
}

/// One fresh-process sample of a benchmark through the ASV harness: value and unit, or
/// why there is none (the benchmark skipped itself, or failed).
fn sample(
    p: &Project,
    asv_harness: &Path,
    id: &str,
) -> Result<std::result::Result<(f64, String), String>> {
    #[derive(serde::Deserialize)]
    struct Sample {
        value: f64,
        unit: String,
    }
    let argv = [
        p.python.display().to_string(),
        asv_harness.display().to_string(),
        "run".into(),
        p.suite.display().to_string(),
        id.to_owned(),
    ];
    // Set even when 0, so that a value in the caller's environment never applies.
    let env = [(
        crate::layers::asv::WARMUP_VAR.into(),
        p.warmup.as_secs_f64().to_string(),
    )];
    let (outcome, stdout, stderr) = run_captured(&argv, &p.source_root, &env)?;
    let last = stdout.lines().last().unwrap_or("").to_owned();
    if let Ok(s) = serde_json::from_str::<Sample>(&last) {
        return Ok(Ok((s.value, s.unit)));
    }
    if let Err(why) = crate::bench::reported_value(&last)
        && why.starts_with("skipped")
    {
        return Ok(Err(why));
    }
    let tail = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Ok(Err(format!(
        "it failed ({}): {}",
        outcome.failure().unwrap_or_else(|| "no result".into()),
        tail.unwrap_or("no output").trim()
    )))
}

/// Median, quartiles and the 99 % distribution-free interval of the median (order
/// statistics; the extremes when there are too few samples for 99 %) of a benchmark's
/// samples, in any order.
fn timing(mut values: Vec<f64>) -> Timing {
    values.sort_by(f64::total_cmp);
    let (lo, hi) = crate::stats::median_interval(values.len(), 0.99);
    Timing {
        median: crate::stats::median(values.clone()),
        ci99_low: values[lo],
        ci99_high: values[hi],
        q1: crate::stats::quantile(&values, 0.25),
        q3: crate::stats::quantile(&values, 0.75),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_timing_summarises_the_samples_whatever_their_order() {
        let t = super::timing(vec![5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!(
            (t.median, t.q1, t.q3, t.ci99_low, t.ci99_high),
            (3.0, 2.0, 4.0, 1.0, 5.0)
        );
        assert_eq!(super::timing(vec![1.0, 2.0, 3.0, 4.0, 5.0]), t);
    }

    #[test]
    fn changed_files_are_named_as_the_survey_names_them_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let abs = std::fs::canonicalize(root).unwrap().join("src/a.py");
        for given in [
            "src/a.py",
            "./src/a.py",
            "src/x/../a.py",
            abs.to_str().unwrap(),
        ] {
            assert_eq!(
                super::in_checkout(root, given).unwrap(),
                "src/a.py",
                "{given}"
            );
        }
        for given in ["../a.py", "/etc/passwd", ".", "src/../.."] {
            let e = super::in_checkout(root, given).unwrap_err().to_string();
            assert!(e.contains("--changed-files") && e.contains(given), "{e}");
        }
    }
}
