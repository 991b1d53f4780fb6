//! The benchvm controller: validates inputs, runs the agent on a host, renders the report.

pub mod azure_vm;
pub mod cli;
pub mod commands;
pub mod error;
pub mod fixture;
pub mod github;
pub mod host;
pub mod signals;
pub mod ssh_transport;
pub mod timings;

use std::ffi::OsString;

/// Parses `args`, runs the command, and returns the process exit code.
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let cli = match cli::parse(args.into_iter().collect()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match commands::run(cli) {
        Ok(code) => code,
        // The agent printed its own error already.
        Err(err @ error::Error::Agent { .. }) => err.process_exit_code(),
        Err(err) => {
            eprintln!(
                "error: {}",
                benchvm_agent::report::inert::line(&err.to_string())
            );
            err.process_exit_code()
        }
    }
}
