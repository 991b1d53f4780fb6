//! What each `benchvm` subcommand does, one file each, with what they share here: the
//! comparison's preparation, the async runtime, and the outcome (the report finished,
//! printed and mapped to an exit code).

pub mod action;
pub mod cleanup;
pub mod demo;
pub mod merge;
pub mod run;
pub mod timings;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;

use benchvm_agent::exit;
use benchvm_agent::job::Job;
use benchvm_agent::report::{Report, render, results::write_atomic};
use benchvm_agent::stats::Verdict;

use crate::cli::{Cli, Command, Output};
use crate::error::{Error, Result};
use crate::host::{self, Host};
use benchvm_agent::spans::Timeline;

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Agent { args } => {
            let argv = std::iter::once(OsString::from("benchvm-agent")).chain(args);
            Ok(benchvm_agent::cli::main(argv))
        }
        Command::FixtureRepo { dir } => demo::fixture_repo(&dir),
        Command::Run(f) => run::run(*f),
        Command::Calibrate(f) => run::calibrate(*f),
        Command::Merge(f) => merge::merge(&f),
        Command::Action(f) => action::run(*f),
        Command::ActionCleanup(f) => action::cleanup(*f),
        Command::Cleanup(f) => cleanup::cleanup(&f),
        Command::Timings { reports } => timings::timings(&reports),
        Command::Demo(f) => demo::demo(f),
    }
}

/// Runs `fut` to completion on a fresh runtime, then drops the runtime without waiting
/// for blocking tasks: after a cancellation the SSH session may still be blocked in a
/// read, and the job's grace period must not be spent on it (the remote agent notices
/// the dropped connection through its heartbeat and stops by itself).
pub(crate) fn block_on<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::caused("start the async runtime", e))?;
    let out = rt.block_on(fut);
    rt.shutdown_background();
    out
}

/// Settles what the controller decides for the agent: the repository and config as
/// absolute paths (the agent runs elsewhere), the results directory fixed, the config
/// checked before any host starts (the agent applies the same validation), and shard
/// weights taken from an earlier report.
pub(crate) fn prepare(job: &mut Job) -> Result<()> {
    job.repo = absolute_repo(&job.repo);
    if let Some(config) = &job.config {
        benchvm_agent::config::Config::load(config).map_err(|e| Error::Usage(e.to_string()))?;
        job.config = Some(std::path::absolute(config).unwrap_or_else(|_| config.clone()));
    }
    job.fix_results();
    shard_weights(job)
}

/// `--shard-weights REPORT`: the durations of an earlier report, written beside the
/// results as the agent's `--shard-weights` file (a report may be large; the host needs
/// only the durations, and the results keep the split's weights).
fn shard_weights(job: &mut Job) -> Result<()> {
    if job.options.shard_weights.is_none() {
        return Ok(());
    }
    let weights = job
        .shard_weights()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let results = job.results();
    std::fs::create_dir_all(&results)
        .map_err(|e| Error::caused(format!("create {}", results.display()), e))?;
    let path = results.join("shard-weights.json");
    let json = serde_json::to_string_pretty(&weights).expect("serializable");
    write_atomic(&path, &json).map_err(|e| Error::caused("write shard-weights.json", e))?;
    job.options.shard_weights = Some(path);
    Ok(())
}

/// A local path becomes absolute (the agent runs elsewhere); a URL stays as it is.
fn absolute_repo(repo: &str) -> String {
    let path = Path::new(repo);
    if path.exists() {
        std::path::absolute(path).map_or(repo.to_owned(), |p| p.display().to_string())
    } else {
        repo.to_owned()
    }
}

/// Runs the job on `host` (torn down on every path out, see [`host::run_on`]), then
/// writes the outputs: also when the teardown failed, which is then the error (exit 3).
pub(crate) async fn compare(
    host: std::sync::Arc<dyn Host>,
    mut job: Job,
    output: &Output,
) -> Result<i32> {
    prepare(&mut job)?;
    let timeline = Timeline::new();
    let ran = host::run_on(host, &job, &timeline).await?;
    let finished = finish(&job, &timeline, ran.agent_offset, output);
    match ran.teardown {
        Some(teardown) => {
            if let Err(e) = finished {
                eprintln!("error: {e}");
            }
            Err(teardown)
        }
        None => finished,
    }
}

/// Merges the controller's spans into the report, renders and writes the outputs.
fn finish(job: &Job, timeline: &Timeline, agent_offset: f64, output: &Output) -> Result<i32> {
    let report = finalize(job, timeline, agent_offset)?;
    print_outcome(&report, &job.results(), output.markdown);
    Ok(exit_code(&report, output.fail_on_regression))
}

/// The table (at a terminal) or the comment, and where the results are.
pub(crate) fn print_outcome(report: &Report, results: &Path, markdown: bool) {
    if std::io::stdout().is_terminal() && !markdown {
        print!("{}", render::terminal(report));
        println!("comment: {}", results.join("comment.md").display());
    } else {
        print!("{}", render::markdown(report));
    }
    eprintln!("benchvm: results in {}", results.display());
}

pub(crate) fn exit_code(report: &Report, fail_on_regression: bool) -> i32 {
    let fail = fail_on_regression || report.fail_on_regression;
    if report.nothing_measured() {
        eprintln!(
            "benchvm: every benchmark failed ({}), so nothing was measured",
            report.summary.failed
        );
        exit::INFRA
    } else if fail && report.summary.verdict == Verdict::Regressed {
        exit::REGRESSION
    } else {
        exit::OK
    }
}

/// Completes the results directory the agent left: the controller's spans and the
/// names people gave join `report.json`, and `comment.md` is rendered.
pub(crate) fn finalize(job: &Job, timeline: &Timeline, agent_offset: f64) -> Result<Report> {
    let results = job.results();
    let path = results.join("report.json");
    let mut report = Report::read(&path)?;
    for span in &mut report.spans {
        span.start_s += agent_offset;
    }
    report.spans.extend(timeline.spans());
    report.spans.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    // A bundled repository reached the agent as commit ids; keep the names people gave.
    report.base.reference = job.base.clone();
    report.head.reference = job.head().to_owned();
    let json = serde_json::to_string_pretty(&report).expect("serializable");
    write_atomic(&path, &json).map_err(|e| Error::caused("rewrite report.json", e))?;
    let comment = render::markdown(&report);
    let comment_path = results.join("comment.md");
    write_atomic(&comment_path, &comment).map_err(|e| Error::caused("write the comment", e))?;
    Ok(report)
}
