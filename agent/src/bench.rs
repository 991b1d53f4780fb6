//! What is measured: a benchmark is one command whose every run yields one sample value,
//! on either side (base or head) of the comparison.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::measure::runner::{ProcessRunner, RunOutcome, RunSpec};
use crate::side_file::{self, Links};

/// Which side of the comparison a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Base,
    Head,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Base, Side::Head];

    pub fn name(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Head => "head",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The layers of ARCHITECTURE §2, in the order a reader meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Startup,
    Micro,
    Integration,
    Memory,
}

impl Layer {
    pub const ALL: [Layer; 4] = [
        Layer::Startup,
        Layer::Micro,
        Layer::Integration,
        Layer::Memory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Startup => "startup",
            Layer::Micro => "micro",
            Layer::Integration => "integration",
            Layer::Memory => "memory",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Layer::Startup => "Startup",
            Layer::Micro => "Micro-benchmarks",
            Layer::Integration => "Integration",
            Layer::Memory => "Memory",
        }
    }
}

/// What a run's sample value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Whole-process wall time, seconds.
    WallTime,
    /// Peak RSS of the process tree from `wait4`, bytes.
    PeakRss,
    /// The value the process printed as `{"value": N}` on stdout (the micro harness).
    Reported,
}

/// One benchmark, as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    /// Unique across the run: `<layer>/<name>`.
    pub id: String,
    pub layer: Layer,
    pub name: String,
    pub metric: Metric,
    /// The unit of the sample value: `s`, `bytes`, or what a `track_*` benchmark declares.
    pub unit: String,
    #[serde(skip)]
    pub argv: Vec<String>,
    /// Its own per-run limit (an asv benchmark's `timeout`); `None`: the sampling's.
    #[serde(skip)]
    pub timeout: Option<std::time::Duration>,
    /// Sampled through a per-side sample server when the probe has one (asv `time_*`).
    #[serde(skip)]
    pub served: bool,
}

impl Benchmark {
    pub fn new(layer: Layer, name: &str, metric: Metric, unit: &str, argv: Vec<String>) -> Self {
        Self {
            id: format!("{}/{}", layer.name(), name),
            layer,
            name: name.to_owned(),
            metric,
            unit: unit.to_owned(),
            argv,
            timeout: None,
            served: false,
        }
    }
}

/// The environment one side's commands run in.
#[derive(Debug, Clone)]
pub struct SideEnv {
    pub side: Side,
    /// The checked-out tree: every command's working directory.
    pub checkout: PathBuf,
    /// Variables set on every command of this side (PATH with the venv first, VIRTUAL_ENV).
    pub env: Vec<(String, String)>,
    /// Where this side's processes may write ([`crate::measure::confine`]): its checkout,
    /// venv and TMPDIR. `None`: unconfined (tests with scripted runners).
    pub writable: Option<Vec<PathBuf>>,
}

/// The measurement of one successful run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The sample value, in the benchmark's unit.
    pub value: f64,
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_bytes: u64,
}

/// Runs benchmarks on a side; owns the scratch files for captured output.
#[derive(Debug)]
pub struct Probe<'a, R: ProcessRunner> {
    pub runner: &'a R,
    pub scratch: &'a Path,
    pub timeout: std::time::Duration,
    /// Where `served` benchmarks are sampled; `None`: in a fresh process, as all others.
    pub servers: Option<&'a crate::measure::server::Servers>,
    /// The CPU every sample runs on (`sampling.pin_cpu`), the served ones included.
    pub cpu: Option<usize>,
}

impl<R: ProcessRunner> Probe<'_, R> {
    /// Runs `bench` once on each side of `runs`, in lockstep when its samples are served
    /// and the servers take turns ([`crate::measure::server::Servers::measure_pair`]); `None`
    /// when they cannot: then the caller runs the pair one sample after the other.
    pub fn measure_pair(
        &self,
        bench: &Benchmark,
        runs: [(&SideEnv, usize); 2],
    ) -> Option<[Result<Measurement, String>; 2]> {
        let servers = self.servers.filter(|_| bench.served)?;
        let blocks = servers.lockstep()?;
        servers.measure_pair(bench, runs, bench.timeout.unwrap_or(self.timeout), blocks)
    }

    /// Runs `bench` once on `side`; `Err` carries a one-line reason for the failure.
    pub fn measure(
        &self,
        bench: &Benchmark,
        side: &SideEnv,
        pad: usize,
    ) -> Result<Measurement, String> {
        if let Some(servers) = self.servers.filter(|_| bench.served) {
            return servers.measure(bench, side, pad, bench.timeout.unwrap_or(self.timeout));
        }
        let stdout = self.scratch.join("stdout");
        let stderr = self.scratch.join("stderr");
        let spec = RunSpec {
            argv: bench.argv.clone(),
            cwd: side.checkout.clone(),
            env: side.env.clone(),
            timeout: bench.timeout.unwrap_or(self.timeout),
            stdout: (bench.metric == Metric::Reported).then(|| stdout.clone()),
            stderr: Some(stderr.clone()),
            pad,
            cpu: self.cpu,
            writable: side.writable.clone(),
        };
        let outcome = self
            .runner
            .run(&spec)
            .map_err(|e| format!("failed to start {:?}: {e}", bench.argv[0]))?;
        if let Some(failure) = outcome.failure() {
            return Err(match side_file::last_line(&stderr) {
                Some(tail) => format!("{failure}: {tail}"),
                None => failure,
            });
        }
        let value = match bench.metric {
            Metric::WallTime => outcome.wall.as_secs_f64(),
            Metric::PeakRss => outcome.max_rss as f64,
            Metric::Reported => {
                let text = side_file::read(&stdout, side_file::SMALL, Links::Refuse)
                    .map_err(|e| format!("its output {e}"))?;
                reported_value(&String::from_utf8_lossy(&text))?
            }
        };
        Ok(measurement(value, &outcome))
    }
}

fn measurement(value: f64, o: &RunOutcome) -> Measurement {
    Measurement {
        value,
        wall_s: o.wall.as_secs_f64(),
        user_s: o.user.as_secs_f64(),
        sys_s: o.sys.as_secs_f64(),
        max_rss_bytes: o.max_rss,
    }
}

/// How a run's error starts when the benchmark skipped itself rather than failed.
pub const SKIPPED: &str = "skipped: ";

/// How a run's error starts when it ran out of time (its process group was killed).
pub const TIMED_OUT: &str = "timed out after ";

/// Reads the documented micro-benchmark output: the last line of stdout is a JSON object
/// `{"value": <number>, "unit": "<unit>"}`, or `{"skipped": "<reason>"}`.
pub fn reported_value(stdout: &str) -> Result<f64, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("printed nothing; expected {\"value\": <number>}")?;
    let json: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("printed no JSON on its last line: {e}"))?;
    if let Some(reason) = json.get("skipped").and_then(|r| r.as_str()) {
        return Err(format!("{SKIPPED}{reason}"));
    }
    json.get("value")
        .and_then(|v| v.as_f64())
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("printed {line}, which has no finite \"value\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reported_value() {
        assert_eq!(
            reported_value("noise\n{\"value\": 0.5, \"unit\": \"s\"}\n"),
            Ok(0.5)
        );
        assert!(reported_value("").unwrap_err().contains("printed nothing"));
        assert!(
            reported_value("{\"value\": \"x\"}")
                .unwrap_err()
                .contains("no finite")
        );
        assert_eq!(
            reported_value("{\"skipped\": \"needs numpy\"}"),
            Err("skipped: needs numpy".into())
        );
    }
}
