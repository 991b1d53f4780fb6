//! The benchvm agent: everything that runs on the benchmark host, and the vocabulary the
//! controller (`benchvm`) shares with it (ARCHITECTURE, "The crates and what is shared").
//!
//! What the controller may use is [`CONTROLLER_USES`]; a controller test fails on any other
//! path into this crate, so the boundary between the two binaries stays where it is said to be.

// The shared vocabulary: the job, the report (its JSON, rendering, merging, the escaper),
// spans, shards, exit codes.
pub mod exit;
pub mod job;
pub mod report;
pub mod shard;
pub mod spans;

// The agent's own work.
pub mod bench;
pub mod cache;
pub mod calibration;
pub mod checkout;
pub mod cli;
pub mod compare;
pub mod config;
pub mod error;
pub mod git;
pub mod heartbeat;
pub mod install;
pub mod layers;
pub mod lock;
pub mod machine;
pub mod measure;
pub mod python;
pub mod select;
pub mod side_file;
pub mod stats;
#[doc(hidden)]
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

/// The paths into this crate the controller uses: the shared vocabulary whole, and a few
/// named entry points of the agent (running it in-process for the local host, checking a
/// config before a host starts, running git, the default cache, the heartbeat line it
/// filters out, the verdict type, and the test helpers).
pub const CONTROLLER_USES: &[&str] = &[
    "exit",
    "job",
    "report",
    "shard",
    "spans",
    "cli::main",
    "cli::parse_flags",
    "config::Config",
    "git",
    "cache::default_dir",
    "heartbeat::TAG",
    "stats::Verdict",
    "test_support",
];

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Where the two crates start a process of their own, outside tests; each file says why
    /// it is not a [`measure::runner::ProcessRunner`] run.
    const SPAWNS: &[&str] = &[
        // The ProcessRunner itself.
        "agent/src/measure/runner.rs",
        // git: a plain child, for its prompts, its ^C and its helpers (the module says).
        "agent/src/git.rs",
        // The sample server: long-lived and spoken to over pipes; it takes the runner's
        // environment, pinning and process-group tracking, so a stop kills it.
        "agent/src/measure/server.rs",
        // The controller's local agent: a tokio child, awaited beside the signals.
        "controller/src/host/local.rs",
    ];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every process the binaries start goes through the ProcessRunner, or is in
    /// [`SPAWNS`] with its reason; a new `Command::new` elsewhere fails here.
    #[test]
    fn processes_start_only_where_the_list_says() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut files = Vec::new();
        rust_files(&root.join("agent/src"), &mut files);
        rust_files(&root.join("controller/src"), &mut files);
        let mut found = Vec::new();
        for path in &files {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "agent/src/test_support.rs" {
                continue; // compiled for tests only
            }
            let text = std::fs::read_to_string(path).unwrap();
            // Unit tests sit at the end of a file, after `#[cfg(test)]`.
            let code = text.split("#[cfg(test)]").next().unwrap();
            // Spelled in two halves, so that this test does not find itself.
            let spawn = concat!("Command::", "new(");
            let spawns = code
                .match_indices(spawn)
                .filter(|(at, _)| !code[..*at].ends_with("clap::"))
                .count();
            if spawns > 0 {
                assert!(
                    SPAWNS.contains(&rel.as_str()),
                    "{rel} starts a process ({spawns}x) outside the ProcessRunner"
                );
                found.push(rel);
            }
        }
        found.sort();
        let mut listed: Vec<String> = SPAWNS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed, "a listed file no longer starts a process");
    }
}
