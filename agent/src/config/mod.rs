//! `bench.yml`: what to measure and how to sample it.
//!
//! Parsing is two steps, as in ripgrep's low/high args: [`raw`] mirrors the YAML exactly
//! (serde refuses unknown keys and wrong types with a line and column), then
//! [`Config::from_raw`] validates every value once and produces the derived [`Config`]
//! that nothing downstream re-checks.

pub mod asv_conf;
mod raw;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A `bench.yml` that cannot be used. The message is one line and names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serde's own message: it names the key and, where it knows them, line and column.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    /// A value that parsed but is not allowed.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

/// One command to run, already split shell-style (no shell runs it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub name: String,
    /// The command as written in `bench.yml`.
    pub command: String,
    #[serde(skip)]
    pub argv: Vec<String>,
}

/// An integration scenario: a full run whose wall time, CPU and peak RSS are measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationSpec {
    #[serde(flatten)]
    pub run: CommandSpec,
    /// A JSON object of numbers the run writes (relative to the checkout), read after the
    /// last measured run of each side: the scenario's output-quality figures.
    pub quality: Option<PathBuf>,
}

/// Where the micro-benchmarks come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroSpec {
    /// An ASV-style suite directory, relative to the checkout.
    pub asv: Option<PathBuf>,
    /// Commands that print `{"value": <number>, "unit": "<unit>"}` on stdout.
    pub commands: Vec<CommandSpec>,
}

/// How many rounds to run and how long a run may take.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub warmups: u32,
    pub min_rounds: u32,
    pub max_rounds: u32,
    #[serde(rename = "time_budget_s", with = "secs")]
    pub time_budget: Duration,
    #[serde(rename = "timeout_s", with = "secs")]
    pub timeout: Duration,
    /// Fixed RNG seed; a fresh one is drawn (and reported) when absent.
    pub seed: Option<u64>,
    /// asv `time_*` samples from a per-side server that forks a child per sample
    /// (measure/server.rs); `false`: every sample in a fresh interpreter.
    #[serde(default = "forking")]
    pub fork: bool,
    /// Timed repeats per asv `time_*` sample (the sample is their median), unless the
    /// benchmark sets its own `repeat`. Default 1: more repeats in one process did not make
    /// the A/A noise smaller, and each costs a sample's time (docs/perf/repeats.md).
    #[serde(default = "five")]
    pub repeat: u32,
    /// Every micro-benchmark sample of both sides runs on one CPU (the last the agent may
    /// use), so the two runs of a pair share that CPU's speed of the moment
    /// (docs/perf/noise-sources.md). Reports from before it existed: not pinned.
    #[serde(default)]
    pub pin_cpu: bool,
    /// The two samples of a pair of a served benchmark take turns, block by block, both
    /// children alive at once (docs/perf/noise-sources.md). Reports from before: not.
    #[serde(default)]
    pub lockstep: bool,
}

/// What reports written before `repeat` existed used.
fn five() -> u32 {
    5
}

fn forking() -> bool {
    true
}

/// The decision thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The smallest change worth a verdict, in percent (δ of ARCHITECTURE §3).
    pub min_effect_percent: f64,
    /// The false discovery rate for Benjamini–Hochberg.
    pub alpha: f64,
    /// Whether a run on a host with no noise floor for a benchmark measures one first
    /// (crate::calibration).
    #[serde(default)]
    pub calibration: CalibrationMode,
}

/// `thresholds.calibration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMode {
    /// An A/A of the base before measuring, for the benchmarks this host has no floor for.
    #[default]
    Auto,
    /// Only stored floors are used (`benchvm calibrate` stores them).
    Off,
}

/// A validated `bench.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The interpreter each side's virtual environment is created from.
    pub python: String,
    /// The install command, run in each checkout with its environment active; `None`
    /// means the default (`uv pip install .`, or `pip install .` without uv).
    pub install: Option<CommandSpec>,
    pub startup: Vec<CommandSpec>,
    pub importtime: Option<String>,
    pub micro: MicroSpec,
    pub integration: Vec<IntegrationSpec>,
    pub memory: Vec<CommandSpec>,
    pub sampling: Sampling,
    pub thresholds: Thresholds,
    pub fail_on_regression: bool,
    /// Survey the base and measure only the benchmarks the diff can affect (ARCHITECTURE §4).
    #[serde(default)]
    pub selective: bool,
}

impl Config {
    /// Reads and validates a `bench.yml` file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates `bench.yml` text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: raw::RawConfig = serde_yaml::from_str(text).map_err(|err| ConfigError::Parse {
            origin: origin.to_owned(),
            message: one_line(&err.to_string()),
        })?;
        Self::from_raw(raw, origin)
    }

    fn from_raw(raw: raw::RawConfig, origin: &str) -> Result<Self, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        let command = |key: String, name: String, command: String| {
            let argv = split_command(&command).map_err(|message| invalid(&key, message))?;
            if name.trim().is_empty() {
                return Err(invalid(&key, "name must not be empty".into()));
            }
            Ok(CommandSpec {
                name,
                command,
                argv,
            })
        };
        let commands = |layer: &str, list: Vec<raw::RawCommand>| {
            let mut seen = HashSet::new();
            list.into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let key = format!("{layer}[{i}]");
                    if !seen.insert(c.name.clone()) {
                        return Err(invalid(
                            &format!("{key}.name"),
                            format!("duplicate name {:?} in {layer}", c.name),
                        ));
                    }
                    command(format!("{key}.command"), c.name, c.command)
                })
                .collect::<Result<Vec<_>, _>>()
        };

        let install = raw
            .install
            .map(|text| command("install".into(), "install".into(), text))
            .transpose()?;
        let startup = commands("startup", raw.startup)?;
        let micro_raw = raw.micro.unwrap_or_default();
        let micro = MicroSpec {
            asv: micro_raw.asv,
            commands: commands("micro.commands", micro_raw.commands)?,
        };
        let memory = commands("memory", raw.memory)?;
        let mut seen = HashSet::new();
        let mut integration = Vec::new();
        for (i, c) in raw.integration.into_iter().enumerate() {
            let key = format!("integration[{i}]");
            if !seen.insert(c.name.clone()) {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("duplicate name {:?} in integration", c.name),
                ));
            }
            integration.push(IntegrationSpec {
                run: command(format!("{key}.command"), c.name, c.command)?,
                quality: c.quality,
            });
        }
        if let Some(module) = &raw.importtime {
            let valid = !module.is_empty()
                && module.split('.').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                });
            if !valid {
                return Err(invalid(
                    "importtime",
                    format!("{module:?} is not a dotted Python module name"),
                ));
            }
        }

        let s = raw.sampling;
        if s.min_rounds < 2 {
            return Err(invalid(
                "sampling.min_rounds",
                format!("must be at least 2 (got {})", s.min_rounds),
            ));
        }
        if s.max_rounds < s.min_rounds {
            return Err(invalid(
                "sampling.max_rounds",
                format!(
                    "must be at least sampling.min_rounds ({} < {})",
                    s.max_rounds, s.min_rounds
                ),
            ));
        }
        if s.repeat == 0 {
            return Err(invalid(
                "sampling.repeat",
                "must be at least 1 (got 0)".into(),
            ));
        }
        let seconds = |key: &str, value: f64| {
            if value.is_finite() && value > 0.0 && value < 86_400.0 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(invalid(
                    key,
                    format!("must be a number of seconds between 0 and 86400 (got {value})"),
                ))
            }
        };
        let sampling = Sampling {
            warmups: s.warmups,
            min_rounds: s.min_rounds,
            max_rounds: s.max_rounds,
            time_budget: seconds("sampling.time_budget_s", s.time_budget_s)?,
            timeout: seconds("sampling.timeout_s", s.timeout_s)?,
            seed: s.seed,
            fork: s.fork,
            repeat: s.repeat,
            pin_cpu: s.pin_cpu,
            lockstep: s.lockstep,
        };

        let t = raw.thresholds;
        if !(t.min_effect_percent > 0.0 && t.min_effect_percent < 100.0) {
            return Err(invalid(
                "thresholds.min_effect_percent",
                format!(
                    "must be above 0 and below 100 (got {})",
                    t.min_effect_percent
                ),
            ));
        }
        if !(t.alpha > 0.0 && t.alpha < 1.0) {
            return Err(invalid(
                "thresholds.alpha",
                format!("must be above 0 and below 1 (got {})", t.alpha),
            ));
        }
        let config = Config {
            python: raw.python,
            install,
            startup,
            importtime: raw.importtime,
            micro,
            integration,
            memory,
            sampling,
            thresholds: Thresholds {
                min_effect_percent: t.min_effect_percent,
                alpha: t.alpha,
                calibration: t.calibration,
            },
            fail_on_regression: raw.fail_on_regression,
            selective: raw.selective,
        };
        if config.is_empty() {
            return Err(invalid(
                "startup",
                "no benchmarks: set at least one of startup, micro, integration, memory".into(),
            ));
        }
        Ok(config)
    }

    fn is_empty(&self) -> bool {
        self.startup.is_empty()
            && self.micro.asv.is_none()
            && self.micro.commands.is_empty()
            && self.integration.is_empty()
            && self.memory.is_empty()
    }
}

/// Splits a command shell-style; benchvm never runs a shell, so quoting is all it honours.
fn split_command(command: &str) -> Result<Vec<String>, String> {
    match shlex::split(command) {
        Some(argv) if !argv.is_empty() => Ok(argv),
        Some(_) => Err("must not be empty".into()),
        None => Err(format!("{command:?} has unbalanced quotes")),
    }
}

/// serde_yaml occasionally wraps long messages; a one-line error is part of the contract.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        f64::deserialize(d).map(Duration::from_secs_f64)
    }
}

#[cfg(test)]
mod tests;
