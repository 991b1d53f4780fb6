//! `bench.yml` exactly as written. Unknown keys are refused here, by serde.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_python")]
    pub python: String,
    pub install: Option<String>,
    #[serde(default)]
    pub startup: Vec<RawCommand>,
    pub importtime: Option<String>,
    pub micro: Option<RawMicro>,
    #[serde(default)]
    pub integration: Vec<RawIntegration>,
    #[serde(default)]
    pub memory: Vec<RawCommand>,
    #[serde(default)]
    pub sampling: RawSampling,
    #[serde(default)]
    pub thresholds: RawThresholds,
    #[serde(default)]
    pub fail_on_regression: bool,
    #[serde(default)]
    pub selective: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommand {
    pub name: String,
    pub command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegration {
    pub name: String,
    pub command: String,
    pub quality: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMicro {
    pub asv: Option<PathBuf>,
    #[serde(default)]
    pub commands: Vec<RawCommand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSampling {
    pub warmups: u32,
    pub min_rounds: u32,
    pub max_rounds: u32,
    pub time_budget_s: f64,
    pub timeout_s: f64,
    pub seed: Option<u64>,
    pub fork: bool,
    pub repeat: u32,
    pub pin_cpu: bool,
    pub lockstep: bool,
}

impl Default for RawSampling {
    fn default() -> Self {
        Self {
            warmups: 1,
            min_rounds: 8,
            max_rounds: 40,
            time_budget_s: 600.0,
            timeout_s: 120.0,
            seed: None,
            fork: true,
            repeat: 1,
            pin_cpu: true,
            lockstep: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawThresholds {
    pub min_effect_percent: f64,
    pub alpha: f64,
    pub calibration: super::CalibrationMode,
}

impl Default for RawThresholds {
    fn default() -> Self {
        Self {
            min_effect_percent: 2.0,
            alpha: 0.05,
            calibration: super::CalibrationMode::Auto,
        }
    }
}

fn default_python() -> String {
    "python3".into()
}
