//! The `benchvm` command line: flags are parsed here once and turned into an
//! [`Job`] and output choices; nothing downstream re-validates them.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use benchvm_agent::exit;
use benchvm_agent::report::{Report, render, results::write_atomic};
use benchvm_agent::stats::Verdict;
use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::fixture;
use crate::host::{self, Host};
use crate::timings::{self, Timings};
use benchvm_agent::job::{Job, JobOptions};

#[derive(Debug, Parser)]
#[command(
    name = "benchvm",
    version,
    about = "Did this branch make the program faster or slower, by how much, and how sure are we?"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare two refs on a host and render the PR comment.
    Run(Box<RunFlags>),
    /// Build the fixture repository and compare its perf branch with main, on this machine.
    Demo(DemoFlags),
    /// Measure the host's noise floor: an A/A comparison of --base against itself, whose
    /// per-benchmark floors are stored in the host cache and raise δ for noisy benchmarks.
    Calibrate(Box<CalibrateFlags>),
    /// Join the reports of `run --shard` into one report and comment (verdicts recomputed
    /// over the whole set).
    Merge(MergeFlags),
    /// Deallocate the Azure VM (idempotent): the Action's post step and the scheduled reaper.
    Cleanup(CleanupFlags),
    /// Where a run's minutes go: phase timings of one or more report.json, Pareto-sorted.
    Timings {
        /// report.json files (several: medians per phase).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
    },
    /// Build the demo's throw-away fixture repository at DIR (main + perf/speedups).
    FixtureRepo {
        /// Where to create it (replaced if it exists).
        dir: PathBuf,
    },
    /// The GitHub Action's step: flags not given are read from INPUT_<NAME> (action.yml).
    Action(Box<crate::action::ActionFlags>),
    /// The GitHub Action's post step: deallocates the Azure VM (INPUT_<NAME> as for action).
    ActionCleanup(Box<crate::action::ActionFlags>),
    /// Run the agent in this process's binary (what `--local` uses).
    #[command(hide = true, disable_help_flag = true)]
    Agent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// What to do with the outcome.
#[derive(Debug, clap::Args)]
struct Output {
    /// Exit with 1 when a benchmark regressed (also set by bench.yml's fail_on_regression).
    #[arg(long)]
    fail_on_regression: bool,
    /// Print the markdown comment even when stdout is a terminal.
    #[arg(long)]
    markdown: bool,
}

#[derive(Debug, clap::Args)]
struct RunFlags {
    #[command(flatten)]
    host: crate::host::HostFlags,
    #[command(flatten)]
    job: Job,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct CalibrateFlags {
    #[command(flatten)]
    host: crate::host::HostFlags,
    /// The repository: a git URL or a local path.
    #[arg(long, default_value = ".")]
    repo: String,
    /// The ref to measure against itself (the base your pull requests compare against).
    #[arg(long)]
    base: String,
    /// bench.yml to use [default: the base ref's bench.yml].
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    options: JobOptions,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MergeFlags {
    /// The shards' report.json files, or directories holding one (searched one level deep).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged report.json and comment.md [default: results/merged-<unix time>].
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Exit with 1 when a benchmark regressed.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Print the markdown comment even when stdout is a terminal.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, clap::Args)]
struct CleanupFlags {
    #[command(flatten)]
    azure: crate::host::AzureFlags,
    /// Only have the deallocation accepted; do not wait for it to finish.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, clap::Args)]
struct DemoFlags {
    #[command(flatten)]
    options: JobOptions,
    #[command(flatten)]
    output: Output,
}

/// The command line's definition (for checks that keep action.yml in step with it).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses the Action's subcommands: a bad input is one line that names the input as
/// action.yml does, with the values it takes.
fn parse_inputs(args: Vec<OsString>) -> std::result::Result<Cli, i32> {
    use clap::error::{ContextKind, ContextValue};
    <Cli as clap::Parser>::try_parse_from(args).map_err(|err| {
        if !err.use_stderr() {
            let _ = err.print();
            return exit::OK;
        }
        let text = err.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ");
        let values = match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(v)) if !v.is_empty() => {
                format!(" (one of: {})", v.join(", "))
            }
            _ => String::new(),
        };
        eprintln!("error: {}{values}", name_inputs(first));
        exit::USAGE
    })
}

/// `'--backend <BACKEND>'` → `input 'backend'`.
fn name_inputs(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("'--") {
        out.push_str(&rest[..at]);
        let quoted = &rest[at + 1..];
        let Some(end) = quoted.find('\'') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let name = quoted[2..end].split([' ', '=']).next().unwrap_or("");
        out.push_str(&format!("input '{name}'"));
        rest = &quoted[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Parses `args`, runs, and returns the process exit code.
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let mut parsed = None;
    if let Some(sub) = args.get(1).and_then(|a| a.to_str())
        && crate::action::INPUT_COMMANDS.contains(&sub)
    {
        let sub = command().find_subcommand(sub).expect("declared").clone();
        args = crate::action::with_inputs(args, &sub, |name| std::env::var(name).ok());
        parsed = Some(parse_inputs(args.clone()));
    }
    let parsed = parsed.unwrap_or_else(|| benchvm_agent::cli::parse_flags(args));
    let cli: Cli = match parsed {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        // The agent printed its own error already.
        Err(err @ Error::Agent { .. }) => err.process_exit_code(),
        Err(err) => {
            eprintln!(
                "error: {}",
                benchvm_agent::report::inert::line(&err.to_string())
            );
            err.process_exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Agent { args } => {
            let argv = std::iter::once(OsString::from("benchvm-agent")).chain(args);
            Ok(benchvm_agent::cli::main(argv))
        }
        Command::FixtureRepo { dir } => {
            fixture::build(&dir)?;
            println!("{}", dir.display());
            Ok(exit::OK)
        }
        Command::Run(f) => {
            let RunFlags { host, job, output } = *f;
            block_on(compare(host::from_flags(&host)?, job, &output))
        }
        Command::Calibrate(f) => {
            let CalibrateFlags {
                host,
                repo,
                base,
                config,
                options,
                output,
            } = *f;
            let job = Job {
                head: None,
                calibrate: true,
                config,
                options,
                ..Job::new(repo, base, "")
            };
            block_on(compare(host::from_flags(&host)?, job, &output))
        }
        Command::Merge(f) => {
            let results = f
                .results
                .clone()
                .unwrap_or_else(|| benchvm_agent::cli::default_results("merged"));
            let report = merge_reports(&f.reports, &results)?;
            print_outcome(&report, &results, f.markdown);
            Ok(exit_code(&report, f.fail_on_regression))
        }
        Command::Action(f) => crate::action::run(*f),
        Command::ActionCleanup(f) => crate::action::cleanup(*f),
        Command::Cleanup(f) => {
            let vm = f.azure.vm()?;
            block_on(async {
                crate::host::azure::deallocate(&vm, !f.no_wait, &Timings::new()).await?;
                let done = if f.no_wait {
                    "deallocation requested for"
                } else {
                    "deallocated"
                };
                eprintln!("benchvm: {done} VM {}", vm.describe());
                Ok(exit::OK)
            })
        }
        Command::Timings { reports } => {
            let reports = reports
                .iter()
                .map(|p| Report::read(p))
                .collect::<Result<Vec<_>, _>>()?;
            let spans: Vec<&[benchvm_agent::spans::Span]> =
                reports.iter().map(|r| r.spans.as_slice()).collect();
            print!("{}", timings_table(&timings::pareto(&spans)));
            Ok(exit::OK)
        }
        Command::Demo(f) => {
            let cache = f
                .options
                .cache
                .clone()
                .unwrap_or_else(benchvm_agent::cache::default_dir);
            let repo = cache.join("demo").join("textkit");
            eprintln!(
                "benchvm: building the fixture repository at {}",
                repo.display()
            );
            fixture::build(&repo)?;
            let job = Job {
                options: f.options,
                ..Job::new(
                    repo.display().to_string(),
                    fixture::BASE_BRANCH,
                    fixture::HEAD_BRANCH,
                )
            };
            block_on(compare(
                std::sync::Arc::new(host::local::LocalHost),
                job,
                &f.output,
            ))
        }
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
        .map_err(|e| Error::infra("start the async runtime", e))?;
    let out = rt.block_on(fut);
    rt.shutdown_background();
    out
}

fn timings_table(rows: &[timings::ParetoRow]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["phase", "median", "share", "cumulative", "cold/warm runs"]);
    for r in rows {
        table.add_row([
            r.name.clone(),
            format!("{:.1} s", r.median_s),
            format!("{:.0} %", r.share * 100.0),
            format!("{:.0} %", r.cumulative * 100.0),
            format!("{}/{}", r.cold, r.warm),
        ]);
    }
    format!("{table}\n")
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
        .map_err(|e| Error::infra(format!("create {}", results.display()), e))?;
    let path = results.join("shard-weights.json");
    let json = serde_json::to_string_pretty(&weights).expect("serializable");
    write_atomic(&path, &json).map_err(|e| Error::infra("write shard-weights.json", e))?;
    job.options.shard_weights = Some(path);
    Ok(())
}

/// Reads the shard reports (a directory stands for its report.json, or those of its
/// subdirectories, as `actions/download-artifact` lays them out), merges them and writes
/// the merged report.json and comment.md to `results`.
pub(crate) fn merge_reports(inputs: &[PathBuf], results: &Path) -> Result<Report> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let own = input.join("report.json");
            if own.is_file() {
                paths.push(own);
                continue;
            }
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::Usage(format!("{}: {e}", input.display())))?
                .filter_map(|e| e.ok().map(|e| e.path().join("report.json")))
                .filter(|p| p.is_file())
                .collect();
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no report.json in it or in its subdirectories",
                    input.display()
                )));
            }
            found.sort();
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    let reports = paths
        .iter()
        .map(|p| {
            let r = Report::read(p).map_err(|e| Error::Usage(format!("merge: {e}")))?;
            Ok((p.display().to_string(), r))
        })
        .collect::<Result<Vec<_>>>()?;
    let report = benchvm_agent::report::merge::merge(reports)
        .map_err(|e| Error::Usage(format!("merge: {e}")))?;
    std::fs::create_dir_all(results)
        .map_err(|e| Error::infra(format!("create {}", results.display()), e))?;
    let json = serde_json::to_string_pretty(&report).expect("serializable");
    write_atomic(&results.join("report.json"), &json)
        .map_err(|e| Error::infra("write report.json", e))?;
    write_atomic(&results.join("comment.md"), &render::markdown(&report))
        .map_err(|e| Error::infra("write the comment", e))?;
    eprintln!(
        "benchvm: merged {} report(s) into {}",
        paths.len(),
        results.display()
    );
    Ok(report)
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
/// writes the outputs.
async fn compare(host: std::sync::Arc<dyn Host>, mut job: Job, output: &Output) -> Result<i32> {
    prepare(&mut job)?;
    let timings = Timings::new();
    let agent_offset = host::run_on(host, &job, &timings).await?;
    finish(&job, &timings, agent_offset, output)
}

/// Merges the controller's spans into the report, renders and writes the outputs.
fn finish(job: &Job, timings: &Timings, agent_offset: f64, output: &Output) -> Result<i32> {
    let report = finalize(job, timings, agent_offset)?;
    print_outcome(&report, &job.results(), output.markdown);
    Ok(exit_code(&report, output.fail_on_regression))
}

/// The table (at a terminal) or the comment, and where the results are.
fn print_outcome(report: &Report, results: &Path, markdown: bool) {
    if std::io::stdout().is_terminal() && !markdown {
        print!("{}", render::terminal(report));
        println!("comment: {}", results.join("comment.md").display());
    } else {
        print!("{}", render::markdown(report));
    }
    eprintln!("benchvm: results in {}", results.display());
}

fn exit_code(report: &Report, fail_on_regression: bool) -> i32 {
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
pub(crate) fn finalize(job: &Job, timings: &Timings, agent_offset: f64) -> Result<Report> {
    let results = job.results();
    let path = results.join("report.json");
    let mut report = Report::read(&path)?;
    for span in &mut report.spans {
        span.start_s += agent_offset;
    }
    report.spans.extend(timings.spans());
    report.spans.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    // A bundled repository reached the agent as commit ids; keep the names people gave.
    report.base.reference = job.base.clone();
    report.head.reference = job.head().to_owned();
    let json = serde_json::to_string_pretty(&report).expect("serializable");
    write_atomic(&path, &json).map_err(|e| Error::infra("rewrite report.json", e))?;
    let comment = render::markdown(&report);
    let comment_path = results.join("comment.md");
    write_atomic(&comment_path, &comment).map_err(|e| Error::infra("write the comment", e))?;
    Ok(report)
}
