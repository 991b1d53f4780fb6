//! The `benchvm-agent` command line. [`main`] is also what `benchvm agent …` runs, so the
//! controller binary can act as the agent on the local host.

mod compare;
mod local_loop;
mod time;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::exit;
use crate::report::inert;

#[derive(Debug, Parser)]
#[command(
    name = "benchvm-agent",
    version,
    about = "Runs benchvm's benchmark comparison on this host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare two refs: check out, install, measure in randomized pairs, write the results.
    Compare(Box<compare::CompareFlags>),
    /// Time one command the way `compare` times a startup benchmark (for checking the
    /// timer against hyperfine).
    Time(time::TimeFlags),
    /// Run each micro-benchmark once under coverage and record what it depends on, with a
    /// baseline timing, in the selection database (the local loop's first step).
    Survey(local_loop::SurveyFlags),
    /// After an edit: select the benchmarks the change can affect, run only those, print
    /// baseline against current, and record the step.
    Impacted(local_loop::ImpactedFlags),
    /// Check the selection against a catalogue of edits: apply each, select, run the
    /// whole suite anyway, and count affected benchmarks that were not selected (exit 1
    /// when any was missed).
    ValidateSelection(local_loop::ValidateFlags),
}

/// Parses flags the way both binaries do: `Err` holds the exit code once clap has printed
/// the help, the version (0) or a usage error (2).
pub fn parse_flags<T: Parser, I: IntoIterator<Item = OsString>>(
    args: I,
) -> std::result::Result<T, i32> {
    T::try_parse_from(args).map_err(|err| {
        let _ = err.print();
        if err.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        }
    })
}

/// Parses `args`, runs, and returns the process exit code.
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let cli: Cli = match parse_flags(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", inert::line(&err.to_string()));
            err.process_exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Compare(f) => compare::run(*f),
        Command::Survey(f) => local_loop::survey(f),
        Command::Impacted(f) => local_loop::impacted(f),
        Command::ValidateSelection(f) => local_loop::validate(f),
        Command::Time(f) => time::run(f),
    }
}
