//! ASV-style micro-benchmarks, run by benchvm's own small harness (`asv_harness.py`):
//! one fresh interpreter per sample, so base and head samples can be paired and
//! interleaved like every other layer.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bench::{Benchmark, Layer, Metric, SideEnv};
use crate::error::{Error, Result};
use crate::measure::runner::{ProcessRunner, RunSpec};
use crate::side_file::{self, Links};

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

/// The variable that points the harness at a side's prepared `setup_cache` results.
pub const CACHE_VAR: &str = "BENCHVM_ASV_CACHE";

/// The timed repeats of a `time_*` sample when the benchmark does not set `repeat`
/// (`sampling.repeat`).
pub const REPEAT_VAR: &str = "BENCHVM_REPEAT";

#[derive(Debug, Deserialize)]
struct Listing {
    benchmarks: Vec<Listed>,
    errors: Vec<Broken>,
}

#[derive(Debug, Deserialize)]
struct Listed {
    id: String,
    /// asv's kind by name: `time`, `timeraw`, `mem`, `peakmem`, `track`.
    #[serde(default)]
    kind: String,
    /// The module it was found in, relative to the suite (`""`: the suite's `__init__`).
    module: String,
    unit: String,
    timeout: Option<f64>,
    setup_cache: Option<SetupCache>,
}

/// A module of the suite that could not be imported (or a class that could not be
/// looked into): it costs its own benchmarks, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Broken {
    pub module: String,
    /// The last line of the error.
    pub error: String,
}

/// One `setup_cache` of the suite, as asv keys it (module and line).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SetupCache {
    pub key: String,
    /// Its directory under the side's [`CACHE_VAR`].
    pub dir: String,
    /// Its own `timeout` attribute, seconds.
    pub timeout: Option<f64>,
}

/// What one side's discovery found.
#[derive(Debug, Default)]
pub struct Suite {
    pub benchmarks: Vec<Benchmark>,
    /// Per benchmark id, the setup_cache it needs.
    pub caches: Vec<(String, SetupCache)>,
    pub broken: Vec<Broken>,
}

/// Lists the suite's benchmarks as one side sees them. A suite directory the side does
/// not have is an empty suite; one in which nothing could be imported is a usage error.
pub fn discover<R: ProcessRunner>(
    runner: &R,
    harness: &Path,
    suite: &Path,
    side: &SideEnv,
    scratch: &Path,
    timeout: std::time::Duration,
) -> Result<Suite> {
    if !side.checkout.join(suite).is_dir() {
        return Ok(Suite::default());
    }
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
        cpu: None,
        writable: side.writable.clone(),
    };
    let action = format!("list the ASV suite {} on {}", suite.display(), side.side);
    let outcome = runner.run(&spec).map_err(|e| Error::caused(&action, e))?;
    if let Some(failure) = outcome.failure() {
        let tail = side_file::last_line(&stderr).unwrap_or_default();
        return Err(Error::infra(action, format!("{failure}: {tail}")));
    }
    let text = side_file::read_text(&stdout, side_file::LARGE, Links::Refuse)
        .map_err(|e| Error::io("read", &stdout, e))?;
    // The listing is the last line: a suite may print while it is imported.
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let listing: Listing = serde_json::from_str(last).map_err(|e| Error::caused(&action, e))?;
    if listing.benchmarks.is_empty() && !listing.errors.is_empty() {
        let first = &listing.errors[0];
        return Err(Error::Usage(format!(
            "nothing in the ASV suite {} could be imported on {}: {}: {}{}",
            suite.display(),
            side.side,
            if first.module.is_empty() {
                "the suite's package"
            } else {
                &first.module
            },
            first.error,
            match listing.errors.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        )));
    }
    let mut found = Suite {
        broken: listing.errors,
        ..Suite::default()
    };
    for l in listing.benchmarks {
        let argv = vec![
            "python".into(),
            harness.display().to_string(),
            "run".into(),
            suite.display().to_string(),
            l.id.clone(),
            l.module.clone(),
        ];
        let mut b = Benchmark::new(Layer::Micro, &l.id, Metric::Reported, &l.unit, argv);
        // Only timings go through the forked server: memory figures of a forked child would
        // include what its parent had imported.
        b.served = l.kind == "time";
        b.timeout = l
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(std::time::Duration::from_secs_f64);
        if let Some(cache) = l.setup_cache {
            found.caches.push((b.id.clone(), cache));
        }
        found.benchmarks.push(b);
    }
    Ok(found)
}

/// A broken module as a planned benchmark of its own (`micro/<module>`), so the report
/// names it where its benchmarks would have been.
pub fn broken_benchmark(broken: &Broken) -> Benchmark {
    let name = if broken.module.is_empty() {
        "__init__"
    } else {
        &broken.module
    };
    Benchmark::new(Layer::Micro, name, Metric::Reported, "s", Vec::new())
}

/// Runs every `setup_cache` that the planned benchmarks need, once per side, each with its
/// own timeout (else the benchmark's, else `timeout`), in `root/<dir>`. One that fails or
/// times out leaves an `error` file there, which fails only the benchmarks that use it.
pub fn prepare_caches<R: ProcessRunner>(
    runner: &R,
    side: &SideEnv,
    root: &Path,
    planned: &[Benchmark],
    caches: &[(String, SetupCache)],
    timeout: std::time::Duration,
    progress: &mut dyn FnMut(String),
) -> Result<()> {
    let mut done: Vec<&str> = Vec::new();
    for (id, cache) in caches {
        let Some(bench) = planned.iter().find(|b| &b.id == id) else {
            continue;
        };
        if done.contains(&cache.dir.as_str()) {
            continue;
        }
        done.push(&cache.dir);
        // The name comes from the side's own listing: the harness's hash, nothing else (a
        // `..` or a `/` would put the agent's files outside the side's directory).
        if cache.dir.len() != 16 || !cache.dir.bytes().all(|b| b.is_ascii_hexdigit()) {
            progress(format!(
                "setup_cache {} on {}: refused, its directory name {} is not the harness's",
                crate::report::inert::line(&cache.key),
                side.side,
                crate::report::inert::line(&cache.dir)
            ));
            continue;
        }
        let dir = root.join(&cache.dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let limit = cache
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(std::time::Duration::from_secs_f64)
            .or(bench.timeout)
            .unwrap_or(timeout);
        let mut argv = bench.argv.clone();
        argv[2] = "cache".into();
        // Beside the side's directory, not in it: the side may write there, and the agent
        // opens this file itself.
        let stderr = root.with_extension(format!("{}.stderr", cache.dir));
        let spec = RunSpec {
            argv,
            cwd: side.checkout.clone(),
            env: side.env.clone(),
            timeout: limit,
            stdout: None,
            stderr: Some(stderr.clone()),
            pad: 0,
            cpu: None,
            writable: side.writable.clone(),
        };
        progress(format!("setup_cache {} on {}", cache.key, side.side));
        let outcome = runner
            .run(&spec)
            .map_err(|e| Error::caused(format!("run setup_cache {}", cache.key), e))?;
        if let Some(failure) = outcome.failure() {
            // The side may have put anything at `error`, or a link at the directory itself:
            // everything goes through a descriptor of the directory opened without following
            // a link, `error` created new (never through a link) and read the same way.
            let mut why = String::new();
            let read = error_file(&dir, &failure).and_then(|f| {
                std::io::Read::read_to_string(&mut std::io::Read::take(f, 4096), &mut why)
            });
            let why = match read {
                Ok(_) => crate::report::inert::line(&why),
                Err(_) => failure,
            };
            progress(format!(
                "setup_cache {} failed on {}: {why}",
                cache.key, side.side
            ));
        }
    }
    Ok(())
}

/// Writes `failure` to `dir/error` unless it exists, and opens it for reading; neither `dir`
/// nor `error` is followed if it is a link.
fn error_file(dir: &Path, failure: &str) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let no_follow = libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid C string; the descriptor is owned below.
    let raw = unsafe {
        libc::open(
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | no_follow,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    let dir_fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let open = |flags: libc::c_int| -> std::io::Result<std::fs::File> {
        // SAFETY: a valid directory descriptor and a constant C string.
        let fd = unsafe {
            libc::openat(
                dir_fd.as_raw_fd(),
                c"error".as_ptr(),
                flags | no_follow,
                0o644,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    };
    if let Ok(mut new) = open(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) {
        std::io::Write::write_all(&mut new, failure.as_bytes())?;
    }
    open(libc::O_RDONLY | libc::O_NONBLOCK)
}

/// Everything both sides' discoveries found, merged.
pub type Union = (
    Vec<Benchmark>,
    [Vec<(String, SetupCache)>; 2],
    Vec<(crate::bench::Side, Broken)>,
);

/// The union of both sides' suites, base order first: a benchmark only one side has is
/// still planned, and fails (visibly) on the other side at warm-up. A module broken on
/// both sides is reported once, as the head's.
pub fn union(base: Suite, head: Suite) -> Union {
    let mut out = base.benchmarks;
    for b in head.benchmarks {
        if !out.iter().any(|o| o.id == b.id) {
            out.push(b);
        }
    }
    let caches = [base.caches, head.caches];
    let mut broken: Vec<_> = head
        .broken
        .into_iter()
        .map(|b| (crate::bench::Side::Head, b))
        .collect();
    for b in base.broken {
        if !broken.iter().any(|(_, o)| o.module == b.module) {
            broken.push((crate::bench::Side::Base, b));
        }
    }
    (out, caches, broken)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_error_file_is_never_written_or_read_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        // A link at the directory: refused, nothing written where it points.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(super::error_file(&link, "failed").is_err());
        assert!(!real.join("error").exists());
        // A plain directory: written once, then read back.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut super::error_file(&real, "failed").unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "failed");
        // A link at `error`: neither written through nor read.
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, other.join("error")).unwrap();
        assert!(super::error_file(&other, "failed").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

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
            writable: None,
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
        assert!(found.broken.is_empty(), "{:?}", found.broken);
        let found = found.benchmarks;
        let mut ids: Vec<_> = found.iter().map(|b| b.name.as_str()).collect();
        ids.sort();
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
            servers: None,
            cpu: None,
        };
        let value =
            |id: &str| probe.measure(found.iter().find(|b| b.name == id).unwrap(), &side, 0);
        assert_eq!(value("bench_x.track_len").unwrap().value, 1000.0);
        let fast = value("bench_x.TimeSleep.time_sleep(0.001)").unwrap().value;
        let slow = value("bench_x.TimeSleep.time_sleep(0.002)").unwrap().value;
        // Per call, not per repeat: a sleep never returns early, and a late wake-up on a
        // loaded machine (3.9 ms for the 1 ms sleep, seen under load) stays well below the
        // ten calls' total a per-repeat value would show.
        assert!((0.001..0.0095).contains(&fast), "{fast}");
        assert!((0.002..0.0105).contains(&slow), "{slow}");
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
                a[4] = "bench_x.time_nothing".into();
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
            servers: None,
            cpu: None,
        };
        let count = |env: Vec<(String, String)>| {
            let _ = std::fs::remove_file(&calls);
            let side = SideEnv {
                side: Side::Base,
                checkout: checkout.clone(),
                env,
                writable: None,
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
    fn union_keeps_base_order_adds_head_only_benchmarks_and_names_a_broken_module_once() {
        let b = |n: &str| Benchmark::new(Layer::Micro, n, Metric::Reported, "s", vec![]);
        let broken = |m: &str| Broken {
            module: m.into(),
            error: format!("ImportError: {m}"),
        };
        let suite = |names: &[&str], bad: &[&str]| Suite {
            benchmarks: names.iter().map(|n| b(n)).collect(),
            caches: Vec::new(),
            broken: bad.iter().map(|m| broken(m)).collect(),
        };
        let (all, _, bad) = union(
            suite(&["a", "b"], &["both", "base_only"]),
            suite(&["b", "c"], &["both"]),
        );
        let names: Vec<_> = all.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(
            bad,
            [
                (Side::Head, broken("both")),
                (Side::Base, broken("base_only"))
            ]
        );
    }
}
