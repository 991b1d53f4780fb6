//! `benchvm-agent compare`: the whole agent pipeline of ARCHITECTURE §1 (steps a–f), each phase
//! a timed span in the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::bench::{Side, SideEnv};
use crate::calibration::{self, Calibration};
use crate::checkout;
use crate::config::{CalibrationMode, Config, Sampling, Thresholds};
use crate::error::{Error, Result};
use crate::install::Installer;
use crate::job::Job;
use crate::layers::{self, asv, importtime};
use crate::machine::Machine;
use crate::measure::runner::{ProcessRunner, RunSpec, SystemRunner};
use crate::measure::scheduler;
use crate::report::{
    self, CalibrationRun, ImportTime, Quality, Report, Revision, SamplingSummary, Summary, Tool,
    analysis, results,
};
use crate::select::in_compare;
use crate::spans::{Cache, Timeline};

/// How many `python -X importtime` runs per side feed the per-module medians.
const IMPORTTIME_RUNS: u32 = 5;

/// `compare --calibrate` samples up to this many times `max_rounds` (and the time budget).
const CALIBRATION_ROUNDS: u32 = 4;

/// The host, held for one comparison. Everything a run leaves on the host that another run
/// could overwrite (the dead-man switch's files above all) is written only once it is held.
#[derive(Debug)]
pub struct HeldHost {
    _lock: crate::lock::HostLock,
    /// Starts before the wait, so the wait is the run's first span.
    timeline: Timeline,
}

/// Waits (up to `lock_timeout`) until this run has the host to itself.
pub fn hold_host(job: &Job, progress: &mut dyn FnMut(String)) -> Result<HeldHost> {
    let mut timeline = Timeline::new();
    let t = Instant::now();
    let holder = format!("{} vs {} from {}", job.base, job.head(), job.repo);
    let lock = crate::lock::acquire(
        &job.cache().join("host.lock"),
        &holder,
        job.lock_timeout(),
        progress,
    )?;
    timeline.record("host lock", t, None);
    Ok(HeldHost {
        _lock: lock,
        timeline,
    })
}

/// Runs the comparison on the held host and writes the results directory; returns the report.
/// `weights` are the job's shard weights, read (and checked) before the host was held.
pub fn run(
    job: &Job,
    results_dir: &Path,
    weights: &BTreeMap<String, f64>,
    host: HeldHost,
    progress: &mut dyn FnMut(String),
) -> Result<Report> {
    let HeldHost {
        _lock,
        mut timeline,
    } = host;
    let cache_dir = job.cache();
    let head_ref = job.head();
    let runner = SystemRunner;
    let work = Workdir::create(&cache_dir)?;

    let t = Instant::now();
    progress(format!(
        "checking out {} and {} from {}",
        job.base, head_ref, job.repo
    ));
    let mirror = checkout::mirror(&cache_dir, &job.repo, job.mirror_name.as_deref())?;
    let base_commit = checkout::resolve(&mirror, &job.base)?;
    let head_commit = checkout::resolve(&mirror, head_ref)?;
    let checkouts = [work.path.join("base"), work.path.join("head")];
    checkout::worktree(&mirror, &base_commit, &checkouts[0])?;
    checkout::worktree(&mirror, &head_commit, &checkouts[1])?;
    work.track_worktrees(&mirror.path);
    timeline.record("checkout", t, Some(Cache::from_warm(mirror.warm)));

    let mut config = match &job.config {
        Some(path) => Config::load(path)?,
        None => head_config(&checkouts[1], head_ref, progress)?,
    };
    if let Some(seed) = job.options.seed {
        config.sampling.seed = Some(seed);
    }
    if let Some(rounds) = job.options.rounds {
        config.sampling.min_rounds = rounds;
        config.sampling.max_rounds = rounds;
    } else if job.calibrate {
        // A floor bounds a bias that more rounds of a comparison cannot remove: the calibration
        // buys a tight bound once, with four times the rounds (settled benchmarks still stop).
        config.sampling.max_rounds *= CALIBRATION_ROUNDS;
        config.sampling.time_budget *= CALIBRATION_ROUNDS;
    }

    let installer = Installer::find(&config, &cache_dir)?;
    let cache = Cache::from_warm(installer.cache_warm());
    let logs = results_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io("create", &logs, e))?;
    let mut sides = Vec::new();
    for (side, checkout) in Side::BOTH.into_iter().zip(&checkouts) {
        let t = Instant::now();
        progress(format!(
            "installing {side} ({})",
            if installer.uv.is_some() {
                "uv"
            } else {
                "venv + pip"
            }
        ));
        let venv = work.path.join(format!("{side}-venv"));
        let log = logs.join(format!("install-{side}.log"));
        sides.push(installer.install(&runner, &config, side, checkout, &venv, &log)?);
        timeline.record(&format!("install {side}"), t, Some(cache));
    }
    if config.micro.asv.is_some() {
        for side in &mut sides {
            let root = asv_cache_root(&work.path, side.side);
            side.env
                .push((asv::CACHE_VAR.into(), root.display().to_string()));
            side.env
                .push((asv::REPEAT_VAR.into(), config.sampling.repeat.to_string()));
        }
    }
    let (base, head) = (&sides[0], &sides[1]);

    let t = Instant::now();
    let mut benchmarks = layers::from_config(&config);
    let mut asv_suite = None;
    if let Some(suite) = &config.micro.asv {
        let harness = asv::install_harness(&work.path)?;
        let found: Vec<_> = [base, head]
            .iter()
            .map(|side| {
                asv::discover(
                    &runner,
                    &harness,
                    suite,
                    side,
                    &work.path,
                    config.sampling.timeout,
                )
            })
            .collect::<Result<_>>()?;
        let [b, h]: [asv::Suite; 2] = found.try_into().expect("two sides");
        let (micro, caches, broken) = asv::union(b, h);
        for (side, broken) in &broken {
            progress(format!(
                "cannot import {} on {side}: {}",
                broken.module, broken.error
            ));
        }
        // Keep the layer order: startup, micro, integration, memory.
        let at = benchmarks
            .iter()
            .take_while(|b| b.layer == crate::bench::Layer::Startup)
            .count();
        benchmarks.splice(at..at, micro);
        asv_suite = Some((caches, broken));
    }
    // The whole suite's size, shards included: `benchvm merge` runs Benjamini–Hochberg over
    // all shards, so settling and the blind-spot warning count every benchmark.
    let suite_size = benchmarks.len();
    if let Some(shard) = job.options.shard {
        let ids: Vec<String> = benchmarks.iter().map(|b| b.id.clone()).collect();
        let of = crate::shard::assign(&ids, weights, shard.count);
        let total = benchmarks.len();
        let mut of = of.into_iter();
        benchmarks.retain(|_| of.next() == Some(shard.index));
        progress(format!(
            "shard {shard}: {} of {total} benchmark(s)",
            benchmarks.len()
        ));
    }
    timeline.record("plan", t, None);
    progress(format!("planned {} benchmark(s)", benchmarks.len()));

    let selection = if config.selective {
        let t = Instant::now();
        let database = cache_dir.join("selection").join(format!(
            "{}.sqlite",
            mirror
                .path
                .file_name()
                .map_or_else(|| "survey".into(), |n| n.to_string_lossy())
        ));
        if let Some(dir) = database.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let cx = in_compare::Context {
            git_dir: &mirror.path,
            base_commit: &base_commit,
            head_commit: &head_commit,
            base,
            head,
            database: &database,
            scratch: &work.path,
            cache: &cache_dir,
            logs: &logs,
            uv: installer.uv.as_deref(),
            timeout: config.sampling.timeout,
        };
        let selection = match in_compare::choose(&runner, &cx, &benchmarks, progress) {
            Ok(chosen) => {
                timeline.record(
                    "survey and select",
                    t,
                    Some(Cache::from_warm(chosen.reused)),
                );
                benchmarks.retain(|b| chosen.run.contains(&b.id));
                chosen.selection
            }
            Err(e) => {
                // Safe, not silent: everything is measured and the report says why.
                progress(format!(
                    "selective: no selection ({e}); measuring everything"
                ));
                timeline.record("survey and select", t, None);
                in_compare::fallback(&benchmarks, e.to_string())
            }
        };
        // The database goes back with the results, for SQL (`survey`, `dependencies`).
        if let Ok(store) = crate::select::store::Store::open(&database) {
            let _ = store.export(&results_dir.join("selection.sqlite"));
        }
        Some(selection)
    } else {
        None
    };

    if let Some((caches, _)) = &asv_suite {
        let t = Instant::now();
        for (side, caches) in [base, head].into_iter().zip(caches) {
            asv::prepare_caches(
                &runner,
                side,
                &asv_cache_root(&work.path, side.side),
                &benchmarks,
                caches,
                config.sampling.timeout,
                progress,
            )?;
        }
        if caches.iter().any(|c| !c.is_empty()) {
            timeline.record("setup_cache", t, None);
        }
    }

    let seed = config.sampling.seed.unwrap_or_else(rand::random);
    let calibration_file = calibration::path(&cache_dir, &mirror.path);
    let mut calibration = Calibration::load(&calibration_file, &mut |w| {
        progress(format!("warning: {w}"));
    });
    let mut calibrated_now = Vec::new();
    if !job.calibrate && config.thresholds.calibration == CalibrationMode::Auto {
        let missing = calibration.missing(benchmarks.iter().map(|b| b.id.as_str()));
        if !missing.is_empty() {
            let t = Instant::now();
            let planned: Vec<_> = benchmarks
                .iter()
                .filter(|b| missing.contains(&b.id))
                .cloned()
                .collect();
            progress(format!(
                "calibrating: this host has no noise floor for {} benchmark(s); an A/A of \
                 the base first (once per host; thresholds.calibration: off skips it)",
                planned.len()
            ));
            let a_a = a_a(&runner, &work.path, &planned, base, &config, seed, progress);
            calibration.record(
                analysis::floors(&planned, &a_a, config.thresholds.alpha),
                &base_commit,
            );
            calibration.save(&calibration_file)?;
            calibrated_now = missing;
            timeline.record("calibrate", t, None);
        }
    }
    // A calibration run measures the floors; it is not judged against them.
    let floors = if job.calibrate {
        Default::default()
    } else {
        calibration.floors()
    };
    let cpu = config
        .sampling
        .pin_cpu
        .then(crate::measure::runner::sample_cpu)
        .flatten();
    let servers = crate::measure::server::Servers::new(&work.path, cpu).with_lockstep(
        config
            .sampling
            .lockstep
            .then_some(crate::measure::server::LOCKSTEP_BLOCKS),
    );
    let probe = crate::bench::Probe {
        runner: &runner,
        scratch: &work.path,
        timeout: config.sampling.timeout,
        servers: config.sampling.fork.then_some(&servers),
        cpu,
    };
    let t = Instant::now();
    let looks = scheduler::looks(&config.sampling);
    progress(format!(
        "measuring: looks after rounds {}, budget {:.0} s, seed {seed}",
        looks
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        config.sampling.time_budget.as_secs_f64()
    ));
    if let Some(needed) = blind_spot(suite_size, &config.sampling, &config.thresholds) {
        progress(format!(
            "warning: with {} benchmarks and at most {} rounds a lone change cannot be \
             flagged; sampling.max_rounds {needed} or more can",
            suite_size, config.sampling.max_rounds
        ));
    }
    let sampled = scheduler::sample(
        &benchmarks,
        [base, head],
        &probe,
        &config.sampling,
        seed,
        &mut |so_far| {
            let now = analysis::compare(&benchmarks, so_far, &config.thresholds, &floors);
            analysis::settled(&now, config.thresholds.alpha, 2 * suite_size)
        },
        progress,
    );
    // The sample servers (and whatever their children left) go with the sampling.
    drop(servers);
    timeline.record("measure", t, None);
    attribute_layers(&mut timeline, &benchmarks, &sampled);
    let mut sampled = sampled;
    if let Some((_, broken)) = &asv_suite {
        // A module that cannot be imported is named where its benchmarks would have been;
        // with shards, by the first shard alone.
        if job.options.shard.is_none_or(|s| s.index == 1) {
            for (side, broken) in broken {
                let planned = asv::broken_benchmark(broken);
                sampled.dropped.push(crate::measure::scheduler::Dropped {
                    benchmark: planned.id.clone(),
                    reason: format!("{side}: cannot import it: {}", broken.error),
                    skipped: false,
                });
                if !benchmarks.iter().any(|b| b.id == planned.id) {
                    benchmarks.push(planned);
                }
            }
        }
    }

    // The import-time breakdown is not a benchmark: the first shard alone takes it.
    let import = match &config.importtime {
        Some(module) if job.options.shard.is_none_or(|s| s.index == 1) => {
            let t = Instant::now();
            let it = importtime_breakdown(&runner, module, [base, head], &work.path)?;
            timeline.record("importtime", t, None);
            Some(it)
        }
        _ => None,
    };
    let quality = config
        .integration
        .iter()
        .filter_map(|i| {
            let file = i.quality.as_ref()?;
            let id = format!("{}/{}", crate::bench::Layer::Integration.name(), i.run.name);
            if !benchmarks.iter().any(|b| b.id == id) {
                return None;
            }
            Some(read_quality(&id, file, base, head))
        })
        .collect();

    let t = Instant::now();
    let comparisons = analysis::compare(&benchmarks, &sampled, &config.thresholds, &floors);
    if job.calibrate {
        calibration.record(
            analysis::floors(&benchmarks, &sampled, config.thresholds.alpha),
            &base_commit,
        );
        calibration.save(&calibration_file)?;
        calibrated_now = benchmarks.iter().map(|b| b.id.clone()).collect();
        progress(format!(
            "stored the noise floors of {} benchmark(s) in {}",
            calibrated_now.len(),
            calibration_file.display()
        ));
    }
    let mut summary = Summary::of(&comparisons, scheduler::failures(&sampled.dropped));
    if selection.is_some() && comparisons.is_empty() && sampled.dropped.is_empty() {
        // Nothing the change can affect: that is a finding, not a lack of evidence.
        summary.verdict = crate::stats::Verdict::NoChange;
    }
    timeline.record("analyse", t, None);
    let report = Report {
        schema_version: report::SCHEMA_VERSION.into(),
        tool: Tool::this(),
        repository: job.repo.clone(),
        base: Revision {
            reference: job.base.clone(),
            commit: base_commit,
        },
        head: Revision {
            reference: head_ref.to_owned(),
            commit: head_commit,
        },
        machine: Machine::read(),
        python: python_version(&runner, base, &work.path),
        seed,
        sampling: SamplingSummary {
            config: config.sampling,
            rounds: sampled.rounds,
            looks: sampled.looks,
            stopped_by: sampled.stopped_by,
        },
        thresholds: config.thresholds,
        fail_on_regression: config.fail_on_regression,
        benchmarks,
        samples: sampled.pairs,
        dropped: sampled.dropped,
        comparisons,
        importtime: import,
        quality,
        spans: timeline.spans,
        summary,
        selection,
        shard: job.options.shard,
        calibration: (job.calibrate || !calibrated_now.is_empty()).then(|| CalibrationRun {
            a_a_run: job.calibrate,
            above_delta: calibrated_now
                .iter()
                .filter_map(|id| {
                    let floor = calibration.benchmarks.get(id)?.floor_percent?;
                    (floor > config.thresholds.min_effect_percent).then(|| (id.clone(), floor))
                })
                .collect(),
            calibrated_now,
        }),
    };
    results::write(results_dir, &report)?;
    Ok(report)
}

/// An A/A of the base: `benchmarks` sampled with the base's environment on both sides
/// (each side its own sample server), settling as a comparison does.
fn a_a(
    runner: &SystemRunner,
    work: &Path,
    benchmarks: &[crate::bench::Benchmark],
    base: &SideEnv,
    config: &Config,
    seed: u64,
    progress: &mut dyn FnMut(String),
) -> scheduler::Sampled {
    let twin = SideEnv {
        side: Side::Head,
        ..base.clone()
    };
    let cpu = config
        .sampling
        .pin_cpu
        .then(crate::measure::runner::sample_cpu)
        .flatten();
    let servers = crate::measure::server::Servers::new(work, cpu).with_lockstep(
        config
            .sampling
            .lockstep
            .then_some(crate::measure::server::LOCKSTEP_BLOCKS),
    );
    let probe = crate::bench::Probe {
        runner,
        scratch: work,
        timeout: config.sampling.timeout,
        servers: config.sampling.fork.then_some(&servers),
        cpu,
    };
    let none = Default::default();
    scheduler::sample(
        benchmarks,
        [base, &twin],
        &probe,
        &config.sampling,
        seed,
        &mut |so_far| {
            let now = analysis::compare(benchmarks, so_far, &config.thresholds, &none);
            analysis::settled(&now, config.thresholds.alpha, 2 * benchmarks.len())
        },
        progress,
    )
}

/// The rounds interleave all layers; a layer's span is the time its own runs took.
/// The head's `bench.yml`, or else its `asv.conf.json` (its suite alone, as asv would run
/// it); the run says which it read and what of an asv conf it does not use.
/// The rounds a lone change among `benchmarks` needs to be flaggable, when `max_rounds` is
/// fewer: the smallest exact signed-rank p-value is 2^−n, multiplied by the looks, and
/// Benjamini–Hochberg needs it at α/m for a single discovery among m = 2·benchmarks.
fn blind_spot(benchmarks: usize, sampling: &Sampling, thresholds: &Thresholds) -> Option<u32> {
    let m = 2.0 * benchmarks as f64;
    let flaggable = |rounds: u32| {
        let mut plan = *sampling;
        plan.max_rounds = rounds.max(plan.min_rounds);
        let looks = scheduler::looks(&plan).len() as f64;
        0.5f64.powi(rounds as i32) * looks <= thresholds.alpha / m
    };
    if benchmarks == 0 || flaggable(sampling.max_rounds) {
        return None;
    }
    (sampling.max_rounds..200).find(|&r| flaggable(r))
}

fn head_config(checkout: &Path, head: &str, progress: &mut dyn FnMut(String)) -> Result<Config> {
    // Named after the ref, not the scratch worktree it happens to sit in.
    let path = checkout.join("bench.yml");
    if let Ok(text) = std::fs::read_to_string(&path) {
        progress(format!("reading {head}:bench.yml"));
        return Ok(Config::parse(&text, &format!("{head}:bench.yml"))?);
    }
    let Some(rel) = crate::config::asv_conf::find(checkout) else {
        return Err(Error::Usage(format!(
            "{head} has neither a bench.yml nor an asv.conf.json at its root: add one, or pass --config"
        )));
    };
    let origin = format!("{head}:{}", rel.display());
    let found = crate::config::asv_conf::read(checkout, &rel, &origin)?;
    progress(format!(
        "no bench.yml: reading {origin}, the asv suite in {}",
        found
            .config
            .micro
            .asv
            .as_deref()
            .unwrap_or(Path::new("?"))
            .display()
    ));
    for note in &found.notes {
        progress(format!("{origin}: {note}"));
    }
    Ok(found.config)
}

/// Where one side's asv `setup_cache` results live for this run.
fn asv_cache_root(work: &Path, side: Side) -> PathBuf {
    work.join(format!("asv-cache-{side}"))
}

fn attribute_layers(
    timeline: &mut Timeline,
    benchmarks: &[crate::bench::Benchmark],
    sampled: &scheduler::Sampled,
) {
    let origin = timeline.spans.last().map_or(0.0, |s| s.start_s);
    for layer in crate::bench::Layer::ALL {
        let secs: f64 = sampled
            .pairs
            .iter()
            .filter(|p| {
                benchmarks
                    .iter()
                    .any(|b| b.id == p.benchmark && b.layer == layer)
            })
            .flat_map(|p| [p.base, p.head])
            .flatten()
            .map(|m| m.wall_s)
            .sum();
        if secs > 0.0 {
            timeline.spans.push(crate::spans::Span {
                name: format!("measure: {} runs", layer.name()),
                start_s: origin,
                duration_s: secs,
                cache: None,
            });
        }
    }
}

fn importtime_breakdown<R: ProcessRunner>(
    runner: &R,
    module: &str,
    sides: [&SideEnv; 2],
    scratch: &Path,
) -> Result<ImportTime> {
    let mut runs: [Vec<Vec<importtime::ImportRow>>; 2] = Default::default();
    let stderr = scratch.join("importtime.err");
    for _ in 0..IMPORTTIME_RUNS {
        for (i, side) in sides.iter().enumerate() {
            let spec = RunSpec {
                argv: vec![
                    "python".into(),
                    "-X".into(),
                    "importtime".into(),
                    "-c".into(),
                    format!("import {module}"),
                ],
                cwd: side.checkout.clone(),
                env: side.env.clone(),
                timeout: std::time::Duration::from_secs(120),
                stdout: None,
                stderr: Some(stderr.clone()),
                pad: 0,
                cpu: None,
            };
            let outcome = runner
                .run(&spec)
                .map_err(|e| Error::infra("run python -X importtime", e.to_string()))?;
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            if let Some(failure) = outcome.failure() {
                let tail = text.lines().last().unwrap_or("");
                return Err(Error::infra(
                    format!("import {module} on {}", side.side),
                    format!("{failure}: {tail}"),
                ));
            }
            runs[i].push(importtime::parse(&text));
        }
    }
    Ok(ImportTime {
        module: module.to_owned(),
        runs_per_side: IMPORTTIME_RUNS,
        modules: importtime::breakdown(&runs[0], &runs[1]),
    })
}

fn read_quality(id: &str, file: &Path, base: &SideEnv, head: &SideEnv) -> Quality {
    let read = |side: &SideEnv| -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
        let path = side.checkout.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        match value {
            serde_json::Value::Object(map) => Ok(map.into_iter().filter(|(_, v)| v.is_number()).collect()),
            _ => Err(format!("{} is not a JSON object", file.display())),
        }
    };
    match (read(base), read(head)) {
        (Ok(b), Ok(h)) => Quality {
            benchmark: id.to_owned(),
            base: b,
            head: h,
            error: None,
        },
        (b, h) => Quality {
            benchmark: id.to_owned(),
            base: b.clone().unwrap_or_default(),
            head: h.clone().unwrap_or_default(),
            error: b.err().or(h.err()),
        },
    }
}

fn python_version<R: ProcessRunner>(runner: &R, side: &SideEnv, scratch: &Path) -> Option<String> {
    let out = scratch.join("python-version");
    let spec = RunSpec {
        argv: vec!["python".into(), "--version".into()],
        cwd: side.checkout.clone(),
        env: side.env.clone(),
        timeout: std::time::Duration::from_secs(30),
        stdout: Some(out.clone()),
        stderr: None,
        pad: 0,
        cpu: None,
    };
    runner.run(&spec).ok().filter(|o| o.success())?;
    std::fs::read_to_string(out)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A per-run directory under the cache holding the worktrees and venvs; removed (and the
/// worktrees unregistered) when the run ends, however it ends.
struct Workdir {
    path: PathBuf,
    mirror: std::cell::RefCell<Option<PathBuf>>,
}

impl Workdir {
    fn create(cache: &Path) -> Result<Self> {
        let path = cache
            .join("work")
            .join(format!("run-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        std::fs::create_dir_all(&path).map_err(|e| Error::io("create", &path, e))?;
        Ok(Self {
            path,
            mirror: Default::default(),
        })
    }

    fn track_worktrees(&self, mirror: &Path) {
        *self.mirror.borrow_mut() = Some(mirror.to_owned());
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(mirror) = self.mirror.borrow().as_ref() {
            let _ = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(mirror)
                .args(["worktree", "prune"])
                .output();
        }
    }
}

#[cfg(test)]
mod blind_spot_tests {
    use super::*;

    #[test]
    fn a_suite_too_large_for_its_rounds_is_warned_about_with_the_rounds_it_needs() {
        let mut sampling = Sampling {
            warmups: 1,
            min_rounds: 10,
            max_rounds: 10,
            time_budget: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(60),
            seed: None,
            fork: true,
            repeat: 5,
            pin_cpu: false,
            lockstep: false,
        };
        let thresholds = Thresholds {
            min_effect_percent: 2.0,
            alpha: 0.05,
            calibration: crate::config::CalibrationMode::Auto,
        };
        // 2^-10 ≤ 0.05/(2·25) but not 0.05/(2·26): the blind spot at n = 10.
        assert_eq!(blind_spot(25, &sampling, &thresholds), None);
        // 11 rounds would be two looks (10, 11), which halves the gain: 12.
        assert_eq!(blind_spot(26, &sampling, &thresholds), Some(12));
        sampling.max_rounds = 40;
        assert_eq!(blind_spot(1000, &sampling, &thresholds), None);
    }
}
