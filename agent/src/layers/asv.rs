//! ASV-style micro-benchmarks, run by benchvm's own small harness (`asv_harness.py`):
//! one fresh interpreter per sample, so base and head samples can be paired and
//! interleaved like every other layer.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bench::{Benchmark, Layer, Metric, SideEnv};
use crate::error::{Error, Result};
use crate::measure::runner::{ProcessRunner, RunSpec};

/// The harness source, written next to the run's scratch files.
pub const HARNESS: &str = include_str!("asv_harness.py");

/// Seconds the harness runs a `time_*` benchmark untimed before timing it. Only the local
/// loop sets it (`--warmup-time`); `compare` leaves it unset, which means no warm-up.
pub const WARMUP_VAR: &str = "BENCHVM_WARMUP_TIME";

/// Writes the harness into `dir` and returns its path.
pub fn install_harness(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("asv_harness.py");
    std::fs::write(&path, HARNESS).map_err(|e| Error::io("write", &path, e))?;
    Ok(path)
}

#[derive(Debug, Deserialize)]
struct Listed {
    id: String,
    unit: String,
}

/// Lists the suite's benchmarks as one side sees them.
pub fn discover<R: ProcessRunner>(
    runner: &R,
    harness: &Path,
    suite: &Path,
    side: &SideEnv,
    scratch: &Path,
    timeout: std::time::Duration,
) -> Result<Vec<Benchmark>> {
    let stdout = scratch.join("asv-list.json");
    let stderr = scratch.join("asv-list.err");
    let spec = RunSpec {
        argv: vec![
            "python".into(),
            harness.display().to_string(),
            "list".into(),
            suite.display().to_string(),
        ],
        cwd: side.checkout.clone(),
        env: side.env.clone(),
        timeout,
        stdout: Some(stdout.clone()),
        stderr: Some(stderr.clone()),
        pad: 0,
    };
    let action = format!("list the ASV suite {} on {}", suite.display(), side.side);
    let outcome = runner
        .run(&spec)
        .map_err(|e| Error::infra(&action, e.to_string()))?;
    if let Some(failure) = outcome.failure() {
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        let tail = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(Error::infra(action, format!("{failure}: {tail}")));
    }
    let text = std::fs::read_to_string(&stdout).map_err(|e| Error::io("read", &stdout, e))?;
    let listed: Vec<Listed> =
        serde_json::from_str(&text).map_err(|e| Error::infra(&action, e.to_string()))?;
    Ok(listed
        .into_iter()
        .map(|l| {
            let argv = vec![
                "python".into(),
                harness.display().to_string(),
                "run".into(),
                suite.display().to_string(),
                l.id.clone(),
            ];
            Benchmark::new(Layer::Micro, &l.id, Metric::Reported, &l.unit, argv)
        })
        .collect())
}

/// The union of both sides' suites, base order first: a benchmark only one side has is
/// still planned, and fails (visibly) on the other side at warm-up.
pub fn union(base: Vec<Benchmark>, head: Vec<Benchmark>) -> Vec<Benchmark> {
    let mut out = base;
    for b in head {
        if !out.iter().any(|o| o.id == b.id) {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::{Probe, Side};
    use crate::measure::runner::SystemRunner;

    const SUITE: &str = r#"
import time

def setup():
    global DATA
    DATA = list(range(1000))

def time_sum():
    sum(DATA)

def track_len():
    return len(DATA)
track_len.unit = "items"

class TimeSleep:
    params = [0.001, 0.002]
    param_names = ["seconds"]

    def setup(self, seconds):
        if seconds > 0.0015 and False:
            raise NotImplementedError
        self.s = seconds

    def time_sleep(self, seconds):
        time.sleep(self.s)

    def peakmem_list(self, seconds):
        return [0] * 5_000_000

class Skips:
    def setup(self):
        raise NotImplementedError("not here")

    def time_never(self):
        pass
"#;

    #[test]
    fn discovers_and_runs_an_asv_suite_with_real_python() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("checkout");
        std::fs::create_dir_all(checkout.join("benchmarks")).unwrap();
        std::fs::write(checkout.join("benchmarks/bench_x.py"), SUITE).unwrap();
        let harness = install_harness(dir.path()).unwrap();
        let side = SideEnv {
            side: Side::Base,
            checkout,
            env: vec![("PATH".into(), python_path())],
        };
        let timeout = Duration::from_secs(60);
        let found = discover(
            &SystemRunner,
            &harness,
            Path::new("benchmarks"),
            &side,
            dir.path(),
            timeout,
        )
        .unwrap();
        let ids: Vec<_> = found.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            ids,
            [
                "bench_x.Skips.time_never",
                "bench_x.TimeSleep.peakmem_list(0.001)",
                "bench_x.TimeSleep.peakmem_list(0.002)",
                "bench_x.TimeSleep.time_sleep(0.001)",
                "bench_x.TimeSleep.time_sleep(0.002)",
                "bench_x.time_sum",
                "bench_x.track_len",
            ]
        );
        let unit = |id: &str| found.iter().find(|b| b.name == id).unwrap().unit.clone();
        assert_eq!(unit("bench_x.track_len"), "items");
        assert_eq!(unit("bench_x.TimeSleep.peakmem_list(0.001)"), "bytes");

        let probe = Probe {
            runner: &SystemRunner,
            scratch: dir.path(),
            timeout,
        };
        let value =
            |id: &str| probe.measure(found.iter().find(|b| b.name == id).unwrap(), &side, 0);
        assert_eq!(value("bench_x.track_len").unwrap().value, 1000.0);
        let fast = value("bench_x.TimeSleep.time_sleep(0.001)").unwrap().value;
        let slow = value("bench_x.TimeSleep.time_sleep(0.002)").unwrap().value;
        assert!((0.001..0.0019).contains(&fast), "{fast}");
        assert!((0.002..0.003).contains(&slow), "{slow}");
        let sum = value("bench_x.time_sum").unwrap().value;
        assert!(sum > 0.0 && sum < 0.001, "{sum}");
        let mem = value("bench_x.TimeSleep.peakmem_list(0.001)")
            .unwrap()
            .value;
        assert!(mem > 40e6, "a 5M-element list is 40 MB: {mem}");
        let skipped = value("bench_x.Skips.time_never").unwrap_err();
        assert!(skipped.starts_with("skipped: "), "{skipped}");
        let missing = probe.measure(
            &Benchmark::new(Layer::Micro, "x", Metric::Reported, "s", {
                let mut a = found[0].argv.clone();
                *a.last_mut().unwrap() = "bench_x.time_nothing".into();
                a
            }),
            &side,
            0,
        );
        assert!(missing.unwrap_err().contains("not found"));
    }

    #[test]
    fn time_benchmarks_warm_up_only_when_the_local_loop_asks() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("checkout");
        let calls = dir.path().join("calls");
        std::fs::create_dir_all(checkout.join("benchmarks")).unwrap();
        std::fs::write(
            checkout.join("benchmarks/bench_w.py"),
            format!(
                "def time_w():\n    open({:?}, 'a').write('.')\ntime_w.number = 1\ntime_w.repeat = 1\n",
                calls.display().to_string()
            ),
        )
        .unwrap();
        let harness = install_harness(dir.path()).unwrap();
        let bench = Benchmark::new(
            Layer::Micro,
            "bench_w.time_w",
            Metric::Reported,
            "s",
            vec![
                "python".into(),
                harness.display().to_string(),
                "run".into(),
                "benchmarks".into(),
                "bench_w.time_w".into(),
            ],
        );
        let probe = Probe {
            runner: &SystemRunner,
            scratch: dir.path(),
            timeout: Duration::from_secs(60),
        };
        let count = |env: Vec<(String, String)>| {
            let _ = std::fs::remove_file(&calls);
            let side = SideEnv {
                side: Side::Base,
                checkout: checkout.clone(),
                env,
            };
            probe.measure(&bench, &side, 0).unwrap();
            std::fs::read_to_string(&calls).unwrap().len()
        };
        // `compare` leaves the variable unset: one timed call, as before warm-up existed.
        assert_eq!(count(vec![("PATH".into(), python_path())]), 1);
        let warmed = count(vec![
            ("PATH".into(), python_path()),
            (WARMUP_VAR.into(), "0.2".into()),
        ]);
        assert!(warmed > 1, "{warmed}");
    }

    fn python_path() -> String {
        std::env::var("PATH").unwrap()
    }

    #[test]
    fn union_keeps_base_order_and_adds_head_only_benchmarks() {
        let b = |n: &str| Benchmark::new(Layer::Micro, n, Metric::Reported, "s", vec![]);
        let u = union(vec![b("a"), b("b")], vec![b("b"), b("c")]);
        let names: Vec<_> = u.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
