//! The local loop's subcommands: `survey`, `impacted`, `validate-selection`.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exit;
use crate::report::inert;

#[derive(Debug, clap::Args)]
pub(super) struct ValidateFlags {
    #[command(flatten)]
    project: LoopFlags,
    /// The catalogue of edits (YAML: `edits:` with `name`, `steps`, optional `undo`).
    #[arg(long, required_unless_present = "replay", conflicts_with = "replay")]
    catalogue: Option<PathBuf>,
    /// Replay the history A..B instead: each commit (first parents) is selected against a
    /// survey of its parent and checked against its line coverage of the diff and its
    /// outcome before and after.
    #[arg(long, value_name = "A..B")]
    replay: Option<String>,
    /// A timing that moves by this factor either way counts as affected (0: outcomes only).
    #[arg(long, default_value_t = 2.0)]
    timing_factor: f64,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct LoopFlags {
    /// The checkout to work on.
    #[arg(long, default_value = ".")]
    source_root: PathBuf,
    /// The ASV-style suite directory, relative to the source root.
    #[arg(long, default_value = "benchmarks")]
    suite: PathBuf,
    /// The interpreter with the project and coverage.py installed.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// The selection database [default: <source root>/.benchvm/selection.sqlite].
    #[arg(long)]
    database: Option<PathBuf>,
    /// Timed fresh-process runs of each benchmark per round.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Rounds of timed runs: each round runs every benchmark being timed --repeat times,
    /// one benchmark after the other, so slow drift of the machine spreads over all of them.
    /// A benchmark gets rounds × repeat samples (the baseline's `repeat` column).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Seconds each timed process runs a time_* benchmark untimed before timing it
    /// (0: no warm-up beyond the harness's own calibration of its loop).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    warmup_time: f64,
}

#[derive(Debug, clap::Args)]
pub(super) struct SurveyFlags {
    #[command(flatten)]
    project: LoopFlags,
    /// Survey again even when the stored survey is of this commit and environment.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct ImpactedFlags {
    #[command(flatten)]
    project: LoopFlags,
    /// The changed files (relative to the source root) [default: git's view since the
    /// surveyed commit: commits, staged, unstaged, renames, untracked].
    #[arg(long, num_args = 1..)]
    changed_files: Vec<String>,
    /// Use git's view of the changes (the default when --changed-files is not given).
    #[arg(long, conflicts_with = "changed_files")]
    from_git_diff: bool,
    /// Code (a function body, a module's skeleton) covered by more than this fraction of the suite is hot: a change to it is left out here, and reported.
    #[arg(long, default_value_t = 0.5)]
    hotfile_threshold: f64,
    /// The id this step's results are stored under [default: step-<unix time>].
    #[arg(long)]
    step_id: Option<String>,
    /// Print why each benchmark ran or was skipped.
    #[arg(long)]
    explain: bool,
    /// Print the step's results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--python` as a path that works from any directory: a path with a `/` is taken from the
/// current directory (not the source root), a bare name is looked up on `PATH`.
fn interpreter(python: &std::path::Path) -> Result<PathBuf> {
    let missing = |what: &str| Error::Usage(format!("--python {}: {what}", python.display()));
    if python.components().count() > 1 {
        let path = std::path::absolute(python).map_err(|_| missing("no such file"))?;
        return if path.is_file() {
            Ok(path)
        } else {
            Err(missing("no such file"))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(python))
        .find(|p| p.is_file())
        .ok_or_else(|| missing("not found on PATH"))
}

impl LoopFlags {
    /// The validated project: nothing downstream re-checks these flags.
    fn project(&self) -> Result<crate::select::local_loop::Project> {
        if self.rounds == 0 {
            return Err(Error::Usage("--rounds must be at least 1".into()));
        }
        let warmup = Duration::try_from_secs_f64(self.warmup_time).map_err(|_| {
            Error::Usage(format!(
                "--warmup-time must be a finite number of seconds, 0 or more (got {:?})",
                self.warmup_time
            ))
        })?;
        let root =
            std::path::absolute(&self.source_root).unwrap_or_else(|_| self.source_root.clone());
        if !root.is_dir() {
            return Err(Error::Usage(format!(
                "--source-root {}: no such directory",
                self.source_root.display()
            )));
        }
        if !root.join(&self.suite).is_dir() {
            return Err(Error::Usage(format!(
                "--suite {}: no such directory in --source-root {}",
                self.suite.display(),
                self.source_root.display()
            )));
        }
        Ok(crate::select::local_loop::Project {
            suite: root.join(&self.suite),
            database: self
                .database
                .clone()
                .unwrap_or_else(|| root.join(".benchvm/selection.sqlite")),
            python: interpreter(&self.python)?,
            repeat: self.repeat,
            rounds: self.rounds,
            warmup,
            source_root: root,
        })
    }
}

pub(super) fn survey(f: SurveyFlags) -> Result<i32> {
    let p = f.project.project()?;
    // ^C or SIGTERM: the benchmark in progress is killed too, exit 3; the database
    // keeps the previous survey (it is replaced in one transaction).
    crate::heartbeat::stop_on_signals();
    if let Some(dir) = p.database.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let mut progress = |line: String| eprintln!("benchvm-agent: {}", inert::line(&line));
    let (survey, reused) = crate::select::local_loop::survey(&p, f.force, &mut progress)?;
    let always = survey
        .benchmarks
        .iter()
        .filter(|b| b.always_affected.is_some())
        .count();
    println!(
        "{} {} benchmark(s) of {} into {} ({always} always affected)",
        if reused {
            "kept the survey of"
        } else {
            "surveyed"
        },
        survey.benchmarks.len(),
        &survey.commit[..survey.commit.len().min(10)],
        p.database.display()
    );
    Ok(exit::OK)
}

pub(super) fn impacted(f: ImpactedFlags) -> Result<i32> {
    let p = f.project.project()?;
    crate::heartbeat::stop_on_signals();
    if !(0.0..=1.0).contains(&f.hotfile_threshold) {
        return Err(Error::Usage(
            "--hotfile-threshold must be between 0 and 1".into(),
        ));
    }
    let mut progress = |line: String| eprintln!("benchvm-agent: {}", inert::line(&line));
    let (selection, step, results) = crate::select::local_loop::impacted(
        &p,
        &f.changed_files,
        f.hotfile_threshold,
        f.step_id.as_deref(),
        &mut progress,
    )?;
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    if f.json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "benchmark": r.benchmark, "ran": r.ran, "reason": r.reason,
                    "failure": r.failure, "unit": r.unit, "baseline": r.baseline,
                    "median": r.timing.map(|t| t.median), "delta_percent": r.delta_percent,
                })
            })
            .collect();
        let hot: Vec<serde_json::Value> = selection
            .excluded_blocks
            .iter()
            .map(|(block, share)| serde_json::json!({"code": block, "share": share}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"step_id": step.id, "replaced": step.replaced,
                    "results": rows, "hot_code_left_out": hot})
        );
    } else {
        println!("{}", step_table(&results));
        let ran = results.iter().filter(|r| r.ran).count();
        println!(
            "step {}: {ran} of {} benchmark(s) ran{}; {} in {}",
            step.id,
            results.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", failed.len())
            },
            if step.replaced {
                "replaced its earlier results"
            } else {
                "stored"
            },
            p.database.display()
        );
        for r in &failed {
            println!(
                "{}",
                inert::line(&format!(
                    "{} failed: {}",
                    r.benchmark,
                    r.failure.as_deref().unwrap_or_default()
                ))
            );
        }
        for (block, share) in &selection.excluded_blocks {
            let block = inert::line(block);
            println!(
                "hot code changed, left out: {block} (covered by {:.0} % of the suite; --hotfile-threshold 1 includes it)",
                share * 100.0
            );
        }
        if f.explain {
            for d in &selection.decisions {
                let verb = if d.run {
                    "ran because"
                } else {
                    "skipped because"
                };
                println!(
                    "{}",
                    inert::line(&format!("{}: {verb} {}", d.benchmark, d.reasons.join("; ")))
                );
            }
        }
    }
    // A selected benchmark that fails is the edit's fault until shown otherwise.
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::REGRESSION
    })
}

pub(super) fn validate(f: ValidateFlags) -> Result<i32> {
    if !(f.timing_factor == 0.0 || f.timing_factor > 1.0) {
        return Err(Error::Usage(
            "--timing-factor must be 0 (off) or greater than 1".into(),
        ));
    }
    let Some(catalogue) = &f.catalogue else {
        let range = f.replay.as_deref().unwrap_or_default();
        return replay(&f, range);
    };
    let catalogue = crate::select::validate::load(catalogue)?;
    let p = f.project.project()?;
    // Stopped midway, the edit in progress is reset (validate registers how).
    crate::heartbeat::stop_on_signals();
    let mut progress = |line: String| eprintln!("benchvm-agent: {}", inert::line(&line));
    let results =
        crate::select::validate::validate(&p, &catalogue, f.timing_factor, &mut progress)?;
    let missed: usize = results.iter().map(|r| r.missed.len()).sum();
    let affected: usize = results.iter().map(|r| r.affected.len()).sum();
    if f.json {
        println!(
            "{}",
            serde_json::json!({"edits": results, "affected": affected, "missed": missed})
        );
    } else {
        println!("{}", validation_table(&results));
        println!(
            "recall: {} of {affected} affected benchmark(s) selected over {} edit(s); {missed} missed",
            affected - missed,
            results.len()
        );
    }
    Ok(if missed > 0 {
        exit::REGRESSION
    } else {
        exit::OK
    })
}

/// `validate-selection --replay A..B`: one row per commit, then the summary.
fn replay(f: &ValidateFlags, range: &str) -> Result<i32> {
    let p = f.project.project()?;
    crate::heartbeat::stop_on_signals();
    let mut progress = |line: String| eprintln!("benchvm-agent: {}", inert::line(&line));
    let results = crate::select::replay::replay(&p, range, &mut progress)?;
    let missed: usize = results.iter().map(|r| r.missed.len()).sum();
    let summary = replay_summary(&results);
    if f.json {
        println!(
            "{}",
            serde_json::json!({"commits": results, "missed": missed, "summary": summary})
        );
    } else {
        println!("{}", replay_table(&results));
        println!("{summary}");
    }
    Ok(if missed > 0 {
        exit::REGRESSION
    } else {
        exit::OK
    })
}

/// The share of the suite selected per commit (median and worst), what was missed, and
/// the survey's cost.
fn replay_summary(results: &[crate::select::replay::CommitResult]) -> String {
    let shares: Vec<f64> = results
        .iter()
        .filter(|r| r.total > 0)
        .map(|r| r.selected.len() as f64 / r.total as f64)
        .collect();
    let worst = shares.iter().copied().fold(0.0, f64::max);
    let median = if shares.is_empty() {
        0.0
    } else {
        crate::stats::median(shares)
    };
    let missed: usize = results.iter().map(|r| r.missed.len()).sum();
    let affected: usize = results.iter().map(|r| r.affected.len()).sum();
    let everything = results.iter().filter(|r| r.everything.is_some()).count();
    let survey: f64 = results.iter().map(|r| r.survey_seconds).sum();
    format!(
        "{} commit(s): selected share median {:.0} %, worst {:.0} %; {everything} selected everything; {} of {affected} truly affected selected, {missed} missed; surveys {:.0} s ({:.1} s per commit)",
        results.len(),
        median * 100.0,
        worst * 100.0,
        affected - missed,
        survey,
        survey / results.len().max(1) as f64
    )
}

fn replay_table(results: &[crate::select::replay::CommitResult]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["commit", "selected", "affected", "missed", "survey"]);
    for r in results {
        let subject: String = r.subject.chars().take(50).collect();
        t.add_row([
            inert::line(&format!("{} {subject}", &r.commit[..r.commit.len().min(9)])),
            match &r.everything {
                Some(why) => inert::line(&format!(
                    "{} of {} (all: {})",
                    r.selected.len(),
                    r.total,
                    why.chars().take(60).collect::<String>()
                )),
                None => format!("{} of {}", r.selected.len(), r.total),
            },
            r.affected.len().to_string(),
            if r.missed.is_empty() {
                "–".into()
            } else {
                r.missed
                    .iter()
                    .map(|m| inert::line(&format!("{m} ({})", r.affected[m])))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
            format!("{:.0} s", r.survey_seconds),
        ]);
    }
    t.to_string()
}

/// `benchmark | baseline | current | delta` for a step (skipped ones included).
fn step_table(results: &[crate::select::store::StepResult]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "benchmark",
        "baseline (median)",
        "current (median)",
        "delta",
    ]);
    for r in results {
        t.add_row([
            inert::line(&r.benchmark),
            crate::report::render::value(r.baseline, &r.unit),
            match (r.timing, &r.failure) {
                (Some(x), _) => crate::report::render::value(Some(x.median), &r.unit),
                (None, Some(_)) => "failed".into(),
                (None, None) if r.ran => "not timed".into(),
                (None, None) => "skipped".into(),
            },
            r.delta_percent.map_or("–".into(), |d| format!("{d:+.1} %")),
        ]);
    }
    t.to_string()
}

fn validation_table(results: &[crate::select::validate::EditResult]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["edit", "selected", "affected", "missed"]);
    for r in results {
        t.add_row([
            inert::line(&r.name),
            format!("{} of {}", r.selected.len(), r.total),
            r.affected
                .iter()
                .map(|(b, how)| inert::line(&format!("{b} ({how})")))
                .collect::<Vec<_>>()
                .join("\n"),
            if r.missed.is_empty() {
                "–".into()
            } else {
                r.missed
                    .iter()
                    .map(|m| inert::line(m))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::store::{StepResult, Timing};

    fn step(benchmark: &str, unit: &str, baseline: f64, current: Option<f64>) -> StepResult {
        StepResult {
            benchmark: benchmark.into(),
            ran: current.is_some(),
            reason: String::new(),
            baseline: Some(baseline),
            unit: unit.into(),
            timing: current.map(|median| Timing {
                median,
                ci99_low: median,
                ci99_high: median,
                q1: median,
                q3: median,
            }),
            delta_percent: current.map(|c| (c / baseline - 1.0) * 100.0),
            failure: None,
        }
    }

    #[test]
    fn the_step_table_shows_each_benchmark_in_its_own_unit() {
        let table = step_table(&[
            step("b.time_x", "s", 0.000181, Some(0.000190)),
            step("b.peakmem_x", "bytes", 22_867_968.0, None),
            step("b.track_x", "items", 280.0, Some(280.0)),
        ]);
        assert!(
            table.contains("181 µs") && table.contains("190 µs"),
            "{table}"
        );
        assert!(
            table.contains("21.8 MiB") && table.contains("skipped"),
            "{table}"
        );
        assert!(table.contains("280 items"), "{table}");
        assert!(!table.contains("22867968"), "{table}");
    }

    /// A suite's own names (a benchmark id, an edit) reach the terminal tables inert: no
    /// escape sequence, no line of their own.
    #[test]
    fn the_local_loop_tables_show_hostile_names_inert() {
        let hostile = "evil\u{1b}[2J\n::error::pwned";
        let step_table = step_table(&[step(hostile, "s", 0.1, Some(0.1))]);
        let validation_table = validation_table(&[crate::select::validate::EditResult {
            name: hostile.into(),
            total: 1,
            selected: vec![],
            affected: [(hostile.to_owned(), "slower".to_owned())].into(),
            missed: vec![hostile.into()],
        }]);
        for table in [step_table, validation_table] {
            assert!(!table.contains('\u{1b}'), "{table}");
            assert!(
                !table.lines().any(|l| l.starts_with("::error::")),
                "{table}"
            );
            assert!(table.contains("evil\\u{1b}[2J\\n::error::pwned"), "{table}");
        }
    }
}
