//! The `benchvm` command line: flags are parsed here once and turned into an
//! [`AgentJob`] and output choices; nothing downstream re-validates them.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use benchvm_agent::exit;
use benchvm_agent::report::{Report, render, results::write_atomic};
use benchvm_agent::stats::Verdict;
use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::fixture;
use crate::host::local::LocalHost;
use crate::host::{AgentJob, Host};

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
    Run(RunFlags),
    /// Build the fixture repository and compare its perf branch with main, on this machine.
    Demo(DemoFlags),
    /// Build the demo's throw-away fixture repository at DIR (main + perf/speedups).
    FixtureRepo {
        /// Where to create it (replaced if it exists).
        dir: PathBuf,
    },
    /// Run the agent in this process's binary (what `--local` uses).
    #[command(hide = true, disable_help_flag = true)]
    Agent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The results directory [default: results/<head>-<unix time>].
    #[arg(long)]
    results: Option<PathBuf>,
    /// Persistent cache for git mirrors and uv [default: $BENCHVM_CACHE or ~/.cache/benchvm].
    #[arg(long)]
    cache: Option<PathBuf>,
    /// RNG seed for the pair order and shuffles.
    #[arg(long)]
    seed: Option<u64>,
    /// Run exactly this many rounds (overrides bench.yml's min_rounds and max_rounds).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
    rounds: Option<u32>,
    /// Exit with 1 when a benchmark regressed (also set by bench.yml's fail_on_regression).
    #[arg(long)]
    fail_on_regression: bool,
    /// Print the markdown comment even when stdout is a terminal.
    #[arg(long)]
    markdown: bool,
}

#[derive(Debug, clap::Args)]
struct RunFlags {
    /// Run the agent on this machine.
    #[arg(long)]
    local: bool,
    /// The repository: a git URL or a local path.
    #[arg(long, default_value = ".")]
    repo: String,
    /// The ref to compare against.
    #[arg(long)]
    base: String,
    /// The ref under test.
    #[arg(long)]
    head: String,
    /// bench.yml to use [default: the head ref's bench.yml].
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct DemoFlags {
    #[command(flatten)]
    common: Common,
}

/// Parses `args`, runs, and returns the process exit code.
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        // The agent printed its own error already.
        Err(err @ Error::Agent { .. }) => err.process_exit_code(),
        Err(err) => {
            eprintln!("error: {err}");
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
            if !f.local {
                return Err(Error::Usage(
                    "choose a host: --local (the ssh and azure hosts are not built yet)".into(),
                ));
            }
            if let Some(config) = &f.config {
                // Fail fast, before any checkout: the same validation the agent applies.
                benchvm_agent::config::Config::load(config)
                    .map_err(|e| Error::Usage(e.to_string()))?;
            }
            let repo = absolute_repo(&f.repo);
            compare(
                &mut LocalHost,
                job(repo, f.base, f.head, f.config, &f.common),
                &f.common,
            )
        }
        Command::Demo(f) => {
            let cache = f
                .common
                .cache
                .clone()
                .unwrap_or_else(benchvm_agent::cache::default_dir);
            let repo = cache.join("demo").join("textkit");
            eprintln!(
                "benchvm: building the fixture repository at {}",
                repo.display()
            );
            fixture::build(&repo)?;
            let job = job(
                repo.display().to_string(),
                fixture::BASE_BRANCH.into(),
                fixture::HEAD_BRANCH.into(),
                None,
                &f.common,
            );
            compare(&mut LocalHost, job, &f.common)
        }
    }
}

fn job(repo: String, base: String, head: String, config: Option<PathBuf>, c: &Common) -> AgentJob {
    AgentJob {
        results: c
            .results
            .clone()
            .unwrap_or_else(|| benchvm_agent::cli::default_results(&head)),
        repo,
        base,
        head,
        config: config.map(|p| std::path::absolute(&p).unwrap_or(p)),
        cache: c.cache.clone(),
        seed: c.seed,
        rounds: c.rounds,
    }
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

/// Runs the job on `host`, tears the host down on every path out, renders the outputs.
fn compare(host: &mut dyn Host, job: AgentJob, common: &Common) -> Result<i32> {
    let outcome = host.run_agent(&job);
    let teardown = host.teardown();
    outcome?;
    teardown?;
    let report = Report::read(&job.results.join("report.json"))?;
    let comment = render::markdown(&report);
    let comment_path = job.results.join("comment.md");
    write_atomic(&comment_path, &comment).map_err(|e| Error::infra("write the comment", e))?;
    if std::io::stdout().is_terminal() && !common.markdown {
        print!("{}", render::terminal(&report));
        println!("comment: {}", comment_path.display());
    } else {
        print!("{comment}");
    }
    eprintln!("benchvm: results in {}", job.results.display());
    let fail = common.fail_on_regression || report.fail_on_regression;
    Ok(if fail && report.summary.verdict == Verdict::Regressed {
        exit::REGRESSION
    } else {
        exit::OK
    })
}
