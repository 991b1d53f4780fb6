//! `report.json`: the one document the controller consumes (its contract is in
//! docs/ARCHITECTURE.md), how it is derived from samples ([`analysis`]), rendered ([`render`]) and written
//! with the rest of the results directory ([`results`]).

pub mod analysis;
pub mod inert;
pub mod merge;
pub mod render;
pub mod results;

use serde::{Deserialize, Serialize};

use crate::bench::{Benchmark, Layer};
use crate::config::{Sampling, Thresholds};
use crate::layers::importtime::ImportBreakdown;
use crate::machine::Machine;
use crate::measure::scheduler::{Dropped, PairRecord, StopReason};
use crate::spans::Span;
use crate::stats::Verdict;

/// `major.minor`: a reader refuses a newer major; minors only add fields.
pub const SCHEMA_VERSION: &str = "1.1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub tool: Tool,
    pub repository: String,
    pub base: Revision,
    pub head: Revision,
    pub machine: Machine,
    /// `python --version` of the interpreter the environments were made from.
    pub python: Option<String>,
    pub seed: u64,
    pub sampling: SamplingSummary,
    pub thresholds: Thresholds,
    pub fail_on_regression: bool,
    pub benchmarks: Vec<Benchmark>,
    /// Every pair of every round, void ones included.
    pub samples: Vec<PairRecord>,
    /// Benchmarks taken out of sampling (failed warm-up, repeated failures).
    pub dropped: Vec<Dropped>,
    pub comparisons: Vec<Comparison>,
    pub importtime: Option<ImportTime>,
    pub quality: Vec<Quality>,
    pub spans: Vec<Span>,
    pub summary: Summary,
    /// Set by a selective run: what ran, what was skipped and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// Set by a `--shard` run: which share of the benchmarks this report holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// Set when this run measured the host's noise floor (crate::calibration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationRun>,
}

/// What a run calibrated: an A/A of the base on this host, stored in the host cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRun {
    /// The whole run is the A/A (`benchvm calibrate`): its comparisons are base against base.
    pub a_a_run: bool,
    /// The benchmarks whose floor this run measured (before measuring, when the host had
    /// none for them).
    pub calibrated_now: Vec<String>,
    /// Of those, the floors above the configured δ (benchmark id → percent).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub above_delta: std::collections::BTreeMap<String, f64>,
}

/// A selective run's choice of benchmarks (ARCHITECTURE §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Benchmarks measured.
    pub ran: u32,
    /// Benchmarks not measured, each with the reason.
    pub skipped: Vec<Explained>,
    /// Changed files listed as hotfiles (they are never skipped silently).
    #[serde(default)]
    pub hotfiles_changed: Vec<String>,
    /// Why each measured benchmark was selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ran_because: Vec<Explained>,
    /// Set when no selection could be made and everything ran: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained {
    pub benchmark: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Self {
        Self {
            name: "benchvm-agent".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// A ref as asked for and the commit it named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    #[serde(rename = "ref")]
    pub reference: String,
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingSummary {
    #[serde(flatten)]
    pub config: Sampling,
    pub rounds: u32,
    /// The planned looks of adaptive sampling (ARCHITECTURE §3); 1 in reports from before.
    #[serde(default = "crate::measure::scheduler::one_look")]
    pub looks: u32,
    /// The rounds the looks came after (`Sampled::plan`); empty in reports from before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<u32>,
    pub stopped_by: StopReason,
}

/// One benchmark's base/head comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub benchmark: String,
    pub layer: Layer,
    pub name: String,
    pub unit: String,
    /// Valid pairs the statistics used.
    pub pairs: u32,
    /// Pairs voided by a failed run.
    pub void_pairs: u32,
    pub base_median: Option<f64>,
    pub head_median: Option<f64>,
    /// Hodges–Lehmann estimate of head/base and its CI, as percentages.
    pub change: Option<Change>,
    pub p_regressed: Option<f64>,
    pub p_improved: Option<f64>,
    /// Benjamini–Hochberg adjusted over every p-value of the run.
    pub q_regressed: Option<f64>,
    pub q_improved: Option<f64>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// The δ this benchmark was judged against, in percent, when this host's calibrated
    /// noise floor raised it above the configured one (crate::calibration).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_effect_percent: Option<f64>,
    /// Pairs in which one side timed out while the other finished: counted at the timed-out
    /// side's lower bound, not voided (scheduler::Censored).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timed_out: Option<TimedOut>,
}

/// How many of a benchmark's pairs had each side time out while the other finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedOut {
    pub base: u32,
    pub head: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub estimate_percent: f64,
    pub ci_low_percent: f64,
    pub ci_high_percent: f64,
    /// The achieved confidence of the interval (exact intervals hit discrete levels).
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportTime {
    pub module: String,
    pub runs_per_side: u32,
    pub modules: Vec<ImportBreakdown>,
}

/// Output-quality numbers an integration run declared, per side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub benchmark: String,
    pub base: serde_json::Map<String, serde_json::Value>,
    pub head: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The headline: regressed if anything regressed, else improved if anything
    /// improved, else no change if everything was, else inconclusive.
    pub verdict: Verdict,
    pub regressed: u32,
    pub improved: u32,
    pub no_change: u32,
    pub inconclusive: u32,
    pub failed: u32,
}

impl Summary {
    pub fn of(comparisons: &[Comparison], failed: usize) -> Self {
        let count = |v: Verdict| comparisons.iter().filter(|c| c.verdict == v).count() as u32;
        let (regressed, improved) = (count(Verdict::Regressed), count(Verdict::Improved));
        let (no_change, inconclusive) = (count(Verdict::NoChange), count(Verdict::Inconclusive));
        let verdict = if regressed > 0 {
            Verdict::Regressed
        } else if improved > 0 {
            Verdict::Improved
        } else if inconclusive == 0 && failed == 0 && no_change > 0 {
            Verdict::NoChange
        } else {
            Verdict::Inconclusive
        };
        Summary {
            verdict,
            regressed,
            improved,
            no_change,
            inconclusive,
            failed: failed as u32,
        }
    }
}

/// Why a `report.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "report schema {found} is newer than this benchvm understands ({SCHEMA_VERSION}); upgrade the controller"
    )]
    NewerSchema { found: String },
    #[error("failed to parse {path}: {message}")]
    Parse { path: String, message: String },
}

impl Report {
    /// Reads a report, refusing a newer major schema version before anything else.
    pub fn read(path: &std::path::Path) -> Result<Self, ReadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&text, &shown)
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Self, ReadError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: String,
        }
        let parse_err = |e: serde_json::Error| ReadError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        };
        let v: Version = serde_json::from_str(text).map_err(parse_err)?;
        if major(&v.schema_version) > major(SCHEMA_VERSION) {
            return Err(ReadError::NewerSchema {
                found: v.schema_version,
            });
        }
        serde_json::from_str(text).map_err(parse_err)
    }

    /// Every planned benchmark failed: the run measured nothing, which is no verdict at all
    /// (the controller exits [`crate::exit::INFRA`]).
    pub fn nothing_measured(&self) -> bool {
        self.comparisons.is_empty() && self.summary.failed > 0
    }

    pub fn comparisons_in(&self, layer: Layer) -> impl Iterator<Item = &Comparison> {
        self.comparisons.iter().filter(move |c| c.layer == layer)
    }
}

fn major(version: &str) -> u64 {
    version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(u64::MAX)
}
