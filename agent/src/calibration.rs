//! The host's noise floor per benchmark (ARCHITECTURE §3, "calibrated noise floor"): an A/A
//! comparison of the base against itself on this host, stored in the host cache, raises a
//! benchmark's δ to the smallest change that identical code can show here.
//!
//! A benchmark's floor is the largest |bound| of its A/A equivalence interval (the one a
//! "no change" verdict uses, at 1 − α·w): the smallest δ for which that A/A would have said
//! "no change". A change below it is within what identical code shows on this host, so a
//! later comparison uses δ = max(configured δ, floor) for it, and the comment says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The floors a comparison uses: benchmark id → floor in percent.
pub type Floors = BTreeMap<String, f64>;

const SCHEMA: u32 = 1;

/// One repository's calibration on this host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub schema: u32,
    pub benchmarks: BTreeMap<String, Entry>,
}

/// One benchmark's A/A on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `None`: too few pairs to bound its equivalence interval (it is calibrated again).
    pub floor_percent: Option<f64>,
    pub pairs: u32,
    /// The commit the A/A ran on.
    pub commit: String,
    pub measured_at_unix: u64,
}

/// Where a repository's calibration lives: beside its selection database, named after its
/// mirror.
pub fn path(cache: &Path, mirror: &Path) -> PathBuf {
    let name = mirror
        .file_name()
        .map_or_else(|| "repository".into(), |n| n.to_string_lossy());
    cache.join("calibration").join(format!("{name}.json"))
}

impl Calibration {
    /// The stored calibration; an absent file is an empty one. A file this benchvm cannot
    /// read is reported through `warn` and treated as absent (the next A/A replaces it).
    pub fn load(path: &Path, warn: &mut dyn FnMut(String)) -> Self {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(e) => {
                warn(format!(
                    "cannot read {}: {e}; calibrating anew",
                    path.display()
                ));
                return Self::default();
            }
        };
        match serde_json::from_str::<Self>(&text) {
            Ok(c) if c.schema == SCHEMA => c,
            Ok(c) => {
                warn(format!(
                    "{} has calibration schema {} (this benchvm writes {SCHEMA}); calibrating anew",
                    path.display(),
                    c.schema
                ));
                Self::default()
            }
            Err(e) => {
                warn(format!(
                    "{} is not a calibration ({e}); calibrating anew",
                    path.display()
                ));
                Self::default()
            }
        }
    }

    /// Writes the calibration beside its final name and renames it into place.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let mut stored = self.clone();
        stored.schema = SCHEMA;
        let json = serde_json::to_string_pretty(&stored).expect("serializable");
        crate::report::results::write_atomic(path, &json)
    }

    /// The benchmarks of `ids` with no bounded floor: the ones an automatic A/A measures.
    pub fn missing<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        ids.into_iter()
            .filter(|id| {
                self.benchmarks
                    .get(*id)
                    .is_none_or(|e| e.floor_percent.is_none())
            })
            .map(str::to_owned)
            .collect()
    }

    /// Records an A/A's floors (see [`crate::report::analysis::floors`]), replacing older ones.
    pub fn record(&mut self, measured: BTreeMap<String, (Option<f64>, u32)>, commit: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (id, (floor_percent, pairs)) in measured {
            self.benchmarks.insert(
                id,
                Entry {
                    floor_percent,
                    pairs,
                    commit: commit.to_owned(),
                    measured_at_unix: now,
                },
            );
        }
    }

    /// The bounded floors, for the analysis.
    pub fn floors(&self) -> Floors {
        self.benchmarks
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), e.floor_percent?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibration_round_trips_and_only_unbounded_or_absent_benchmarks_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), Path::new("/cache/mirrors/abc123.git"));
        assert!(file.ends_with("calibration/abc123.git.json"));
        let mut warnings = Vec::new();
        let mut c = Calibration::load(&file, &mut |w| warnings.push(w));
        assert_eq!(c, Calibration::default());
        c.record(
            BTreeMap::from([
                ("micro/a".to_owned(), (Some(3.5), 12)),
                ("micro/b".to_owned(), (None, 1)),
            ]),
            "abc",
        );
        c.save(&file).unwrap();
        let back = Calibration::load(&file, &mut |w| warnings.push(w));
        assert_eq!(back.benchmarks, c.benchmarks);
        assert_eq!(back.floors(), Floors::from([("micro/a".to_owned(), 3.5)]));
        assert_eq!(
            back.missing(["micro/a", "micro/b", "micro/c"]),
            ["micro/b", "micro/c"]
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn an_unreadable_calibration_is_named_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("calibration/x.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "{ not json").unwrap();
        let mut warnings = Vec::new();
        let c = Calibration::load(&file, &mut |w| warnings.push(w));
        assert_eq!(c, Calibration::default());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("x.json is not a calibration"),
            "{warnings:?}"
        );
    }
}
