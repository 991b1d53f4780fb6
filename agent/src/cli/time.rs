//! `benchvm-agent time`: one command timed as a startup benchmark is (for checking the
//! timer against hyperfine).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::exit;
use crate::measure::runner::{MAX_PAD, ProcessRunner, RunSpec, SystemRunner};

#[derive(Debug, clap::Args)]
pub(super) struct TimeFlags {
    /// Measured runs.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Discarded warm-up runs.
    #[arg(long, default_value_t = 3)]
    warmup: u32,
    /// The command, without a shell.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

pub(super) fn run(f: TimeFlags) -> Result<i32> {
    let times = time_command(&f.command, f.warmup, f.runs)?;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = crate::stats::median(times.clone());
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"command\": {:?}, \"runs\": {}, \"median_s\": {median}, \"mean_s\": {mean}, \"min_s\": {}, \"max_s\": {}}}",
        f.command.join(" "),
        times.len(),
        sorted[0],
        sorted[sorted.len() - 1]
    );
    Ok(exit::OK)
}

/// Times `argv` exactly as a startup benchmark is timed: same runner, padding, no shell.
fn time_command(argv: &[String], warmup: u32, runs: u32) -> Result<Vec<f64>> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
    let mut times = Vec::new();
    for i in 0..warmup + runs {
        let spec = RunSpec {
            argv: argv.to_vec(),
            cwd: cwd.clone(),
            env: vec![],
            timeout: Duration::from_secs(600),
            stdout: None,
            stderr: None,
            pad: rand::random_range(0..=MAX_PAD),
            cpu: None,
            writable: None,
        };
        let out = SystemRunner
            .run(&spec)
            .map_err(|e| Error::Usage(format!("failed to run {:?}: {e}", argv[0])))?;
        if let Some(failure) = out.failure() {
            return Err(Error::infra(format!("time {:?}", argv.join(" ")), failure));
        }
        if i >= warmup {
            times.push(out.wall.as_secs_f64());
        }
    }
    Ok(times)
}
