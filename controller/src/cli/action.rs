//! The Action's inputs: every flag of `benchvm action` is also an input of `action.yml` (a
//! test keeps the two in step); a flag not given on the command line is read from the
//! runner's `INPUT_<NAME>` variable, so secrets never appear in argv.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;

use crate::github::readout::CommentMode;
use crate::host::{AzureFlags, SshFlags};

/// Where the benchmarks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Azure,
    Ssh,
    Local,
}

/// The inputs of `action.yml`, one flag each.
#[derive(Debug, clap::Args)]
pub struct ActionFlags {
    /// Where the benchmarks run: `azure` (a VM started for the run and deallocated after), `ssh` (an existing machine) or `local` (the runner itself: noisy, for trying things out).
    #[arg(long, value_enum, default_value_t = Backend::Azure)]
    pub backend: Backend,
    #[command(flatten)]
    pub azure: AzureFlags,
    #[command(flatten)]
    pub ssh: SshFlags,
    /// The SSH private key (the key itself, from a secret, or a path to it).
    #[arg(long)]
    pub ssh_key: Option<String>,
    /// bench.yml to use, a path in the workspace [default: the head ref's own bench.yml].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ref to compare against [default: a PR's merge base with its base branch; the default branch for a push or a manual run].
    #[arg(long)]
    pub base: Option<String>,
    /// The ref under test [default: the PR's head commit, or the commit of the push or run].
    #[arg(long)]
    pub head: Option<String>,
    /// The repository to benchmark: a git URL or a path [default: the workspace's checkout if there is one, else this repository's URL].
    #[arg(long)]
    pub repository: Option<String>,
    /// Token for the PR comment (needs `pull-requests: write`) [default: $GITHUB_TOKEN].
    #[arg(long)]
    pub github_token: Option<String>,
    /// Fail the step (exit code 1) when a benchmark regressed.
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub fail_on_regression: bool,
    /// When to post the sticky PR comment: `always`, `on-change` (only when something changed; an existing comment is still updated) or `never`.
    #[arg(long, value_enum, default_value_t = CommentMode::Always)]
    pub comment: CommentMode,
    /// Benchmark pull requests from forks too: their code then runs on your machine.
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_forks: bool,
    /// Accept `backend: local` on pull request events: the head's code then runs on the runner itself, beside the job's token and secrets.
    #[arg(long, default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_local_pull_requests: bool,
    /// Minutes the comparison may take on the host before it is stopped.
    #[arg(long, default_value_t = 180.0)]
    pub timeout_minutes: f64,
    /// The results directory (report.json, comment.md, logs) for actions/upload-artifact; the step's `results` output names it. Default: `benchvm-results` under `RUNNER_TEMP`, outside the checkout. A path through a symbolic link is refused.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Measure only share I of N of the benchmarks, e.g. `2/3` (one matrix job per VM); a shard writes its summary and outputs but never comments.
    #[arg(long)]
    pub shard: Option<benchvm_agent::shard::Shard>,
    /// A previous report.json (a merged one, say): its durations balance the shards.
    #[arg(long)]
    pub shard_weights: Option<PathBuf>,
    /// Instead of running, merge these shard reports (report.json files or directories, separated by spaces or newlines) and comment: the job after a sharded matrix.
    #[arg(long)]
    pub merge: Option<String>,
}

/// The subcommands whose flags may come from `INPUT_*`.
pub const INPUT_COMMANDS: [&str; 2] = ["action", "action-cleanup"];

/// Adds, for every flag of `command` missing from `args`, the value of its input
/// variable `INPUT_<NAME>` (upper case, as the runner sets it) when that is not empty.
pub fn with_inputs(
    mut args: Vec<OsString>,
    command: &clap::Command,
    var: impl Fn(&str) -> Option<String>,
) -> Vec<OsString> {
    let given: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" || given.iter().any(|g| g == long) {
            continue;
        }
        if let Some(value) = var(&input_variable(long)).filter(|v| !v.trim().is_empty()) {
            // One argument: a value may start with '-' (a private key, a negative number).
            args.push(format!("--{long}={}", value.trim_end_matches(['\n', '\r'])).into());
        }
    }
    args
}

/// The variable the runner sets for input `name`.
pub fn input_variable(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn inputs_fill_the_flags_not_given() {
        let cmd = crate::cli::command();
        let sub = cmd.find_subcommand("action").unwrap();
        let vars = |name: &str| match name {
            "INPUT_GITHUB-TOKEN" => Some("ghs_x".to_owned()),
            "INPUT_BACKEND" => Some("ssh".to_owned()),
            "INPUT_BASE" => Some(String::new()),
            "INPUT_FAIL-ON-REGRESSION" => Some("true\n".to_owned()),
            "INPUT_SSH-KEY" => Some("-----BEGIN KEY-----\nabc\n-----END KEY-----\n".to_owned()),
            _ => None,
        };
        let out = with_inputs(args(&["benchvm", "action", "--backend=local"]), sub, vars);
        let out: Vec<_> = out.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            out,
            [
                "benchvm",
                "action",
                "--backend=local",
                "--ssh-key=-----BEGIN KEY-----\nabc\n-----END KEY-----",
                "--github-token=ghs_x",
                "--fail-on-regression=true"
            ],
            "the command line wins; empty inputs are absent"
        );
        // And clap takes a value that starts with '-' in that form.
        let cli = crate::cli::command().try_get_matches_from(&out);
        assert!(cli.is_ok(), "{:?}", cli.err());
    }
}
