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
pub mod stats;
#[doc(hidden)]
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
