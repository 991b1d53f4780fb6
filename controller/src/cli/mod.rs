//! The `benchvm` command line: flags are parsed here once (the Action's inputs in
//! [`action`]); `commands/` does the work. A comparison's own flags are the agent's
//! [`Job`], declared once for both binaries.

pub mod action;

use std::ffi::OsString;
use std::path::PathBuf;

use benchvm_agent::exit;
use benchvm_agent::job::{Job, JobOptions};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "benchvm",
    version,
    about = "Did this branch make the program faster or slower, by how much, and how sure are we?"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    Action(Box<action::ActionFlags>),
    /// The GitHub Action's post step: deallocates the Azure VM (INPUT_<NAME> as for action).
    ActionCleanup(Box<action::ActionFlags>),
    /// Run the agent in this process's binary (what `--local` uses).
    #[command(hide = true, disable_help_flag = true)]
    Agent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// What to do with the outcome.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// Exit with 1 when a benchmark regressed (also set by bench.yml's fail_on_regression).
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Print the markdown comment even when stdout is a terminal.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunFlags {
    #[command(flatten)]
    pub host: crate::host::HostFlags,
    #[command(flatten)]
    pub job: Job,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct CalibrateFlags {
    #[command(flatten)]
    pub host: crate::host::HostFlags,
    /// The repository: a git URL or a local path.
    #[arg(long, default_value = ".")]
    pub repo: String,
    /// The ref to measure against itself (the base your pull requests compare against).
    #[arg(long)]
    pub base: String,
    /// bench.yml to use [default: the base ref's bench.yml].
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: JobOptions,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct MergeFlags {
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
pub struct CleanupFlags {
    #[command(flatten)]
    pub azure: crate::host::AzureFlags,
    /// Only have the deallocation accepted; do not wait for it to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, clap::Args)]
pub struct DemoFlags {
    #[command(flatten)]
    pub options: JobOptions,
    #[command(flatten)]
    pub output: Output,
}

/// The command line's definition (for checks that keep action.yml in step with it).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses the Action's subcommands: a bad input is one line that names the input as
/// action.yml does, with the values it takes.
fn parse_inputs(args: Vec<OsString>) -> Result<Cli, i32> {
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

/// Parses the command line; `Err` is the exit code once clap (or the Action's input check)
/// has printed the help, the version or the error. The Action's subcommands take flags
/// not given from `INPUT_<NAME>`.
pub fn parse(args: Vec<OsString>) -> Result<Cli, i32> {
    if let Some(sub) = args.get(1).and_then(|a| a.to_str())
        && action::INPUT_COMMANDS.contains(&sub)
    {
        let sub = command().find_subcommand(sub).expect("declared").clone();
        let args = action::with_inputs(args, &sub, |name| std::env::var(name).ok());
        return parse_inputs(args);
    }
    benchvm_agent::cli::parse_flags(args)
}
