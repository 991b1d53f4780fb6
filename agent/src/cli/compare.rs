//! `benchvm-agent compare`: the job, and the session flags a remote host adds beside it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::compare;
use crate::error::{Error, Result};
use crate::exit;
use crate::job::Job;
use crate::measure::runner;
use crate::report::inert;

#[derive(Debug, clap::Args)]
pub(super) struct CompareFlags {
    #[command(flatten)]
    job: Job,
    /// Write a heartbeat line to stderr every N seconds and stop the run when that fails
    /// (the controller is gone). Used by remote hosts.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_secs: Option<u64>,
    /// Arm the VM's dead-man switch in this directory (with --heartbeat-secs).
    #[arg(long, requires = "heartbeat_secs")]
    dead_man_dir: Option<PathBuf>,
    /// Seconds of heartbeat silence after which the dead-man switch fires.
    #[arg(long, default_value_t = 600)]
    dead_man_silence: u64,
    /// Stop the run when nothing arrives on stdin for this many seconds, or stdin ends: the
    /// controller sends a newline every keepalive interval. Used by remote hosts.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    controller_silence: Option<u64>,
}

/// Holds the host, arms the dead-man switch, compares; prints the report's path.
pub(super) fn run(f: CompareFlags) -> Result<i32> {
    let job = f.job;
    let results = job.results();
    let weights = job.shard_weights()?;
    // The namespace probe forks and waits for its child: done before any thread that
    // reaps children (`stop_descendants`) could take that child's status.
    crate::measure::confine::mount_namespace();
    crate::heartbeat::stop_on_signals();
    // What the benchmarked code leaves running, even in a session of its own, stays below
    // this process and is stopped when the run ends, however it ends (`compare::run`, and
    // `heartbeat::stop` on a signal).
    runner::adopt_orphans()
        .map_err(|e| Error::caused("become the reaper of the run's processes", e))?;
    if let Some(secs) = f.controller_silence {
        crate::heartbeat::watch_controller(Duration::from_secs(secs), f.dead_man_dir.clone())
            .map_err(|e| Error::io("watch the controller on", "stdin", e))?;
    }
    if let Some(secs) = f.heartbeat_secs {
        let refresh = f
            .dead_man_dir
            .clone()
            .filter(|_| f.controller_silence.is_none());
        crate::heartbeat::start(Duration::from_secs(secs), refresh);
    }
    let start = Instant::now();
    let mut progress = |line: String| {
        crate::heartbeat::line(&format!(
            "benchvm-agent [{:>6.1}s] {}",
            start.elapsed().as_secs_f64(),
            inert::line(&line)
        ))
    };
    // The switch is armed only by the run that holds the host: a run waiting for it
    // would overwrite the holder's files.
    let host = compare::hold_host(&job, &mut progress)?;
    if let Some(dir) = &f.dead_man_dir {
        crate::heartbeat::arm(dir, Duration::from_secs(f.dead_man_silence))
            .map_err(|e| Error::io("arm the dead-man switch in", dir, e))?;
        // Landlock keeps the benchmarked code from writing the switch's files; in the mount
        // namespace it cannot change their modes or truncate them either.
        crate::measure::confine::protect(dir);
    }
    let report = compare::run(&job, &results, &weights, host, &mut progress)?;
    let s = &report.summary;
    progress(format!(
        "done: {} regressed, {} improved, {} no change, {} inconclusive, {} failed",
        s.regressed, s.improved, s.no_change, s.inconclusive, s.failed
    ));
    println!("{}", results.join("report.json").display());
    Ok(exit::OK)
}
