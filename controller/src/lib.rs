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

#[cfg(test)]
mod tests {
    /// Every `benchvm_agent::…` path in the controller's code starts with one the agent
    /// declares in `CONTROLLER_USES`: the two binaries share that and nothing else.
    #[test]
    fn the_controller_uses_only_what_the_agent_shares() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src];
        let mut seen = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                // Spelled in two halves, so that this test does not find itself.
                !text.contains(concat!("benchvm_", "agent as"))
                    && !text.contains(concat!("benchvm_", "agent::*")),
                "{}: an alias or a glob of benchvm_agent hides what it uses",
                path.display()
            );
            for (at, _) in text.match_indices("benchvm_agent::") {
                let rest = &text[at + "benchvm_agent::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                // `benchvm_agent::report::{Report, render}`: the module is what counts;
                // `benchvm_agent::{job, report}`: each item is.
                let used = rest[..end].trim_end_matches(':');
                let items: Vec<String> = if used.is_empty() && rest[end..].starts_with('{') {
                    let group = &rest[end + 1..rest[end..].find('}').map_or(end + 1, |c| end + c)];
                    group
                        .split(',')
                        .map(|i| i.split_whitespace().next().unwrap_or("").to_owned())
                        .filter(|i| !i.is_empty())
                        .collect()
                } else {
                    vec![used.to_owned()]
                };
                for used in items {
                    if used.is_empty() || used == "CONTROLLER_USES" {
                        continue; // prose, and this test's own list
                    }
                    seen += 1;
                    assert!(
                        benchvm_agent::CONTROLLER_USES
                            .iter()
                            .any(|allowed| used == *allowed
                                || used.starts_with(&format!("{allowed}::"))),
                        "{}: {}{used} is not in CONTROLLER_USES",
                        path.display(),
                        concat!("benchvm_", "agent::")
                    );
                }
            }
        }
        assert!(seen > 20, "found the controller's uses ({seen})");
    }
}
