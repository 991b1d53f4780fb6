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
use crate::measure::runner::{self, ProcessRunner, RunSpec, SystemRunner};
use crate::measure::scheduler;
use crate::report::{
    self, CalibrationRun, ImportTime, Quality, Report, Revision, SamplingSummary, Summary, Tool,
    analysis, results,
};
use crate::select::in_compare;
use crate::side_file::{self, Links};
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
    let timeline = Timeline::new();
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
/// `weights` are the job's shard weights, read (and checked) before the host was held. One
/// named phase after another, each a span of the timeline (ARCHITECTURE §1).
pub fn run(
    job: &Job,
    results_dir: &Path,
    weights: &BTreeMap<String, f64>,
    host: HeldHost,
    progress: &mut dyn FnMut(String),
) -> Result<Report> {
    let HeldHost { _lock, timeline } = host;
    // Declared after the lock, so dropped before it: what the run left running is stopped
    // while this run still holds the host.
    let _leftovers = runner::StopLeftovers;
    let cache_dir = job.cache();
    crate::measure::confine::protect(&cache_dir);
    let mut run = Phases {
        job,
        work: Workdir::create(&cache_dir)?,
        cache_dir,
        logs: results_dir.join("logs"),
        runner: SystemRunner,
        timeline,
        progress,
    };
    let code = run.check_out()?;
    let config = run.configure(&code)?;
    let (installer, sides) = run.install(&config, &code)?;
    let sides = [&sides[0], &sides[1]];
    let mut plan = run.plan(&config, sides, weights)?;
    let selection = if config.selective {
        Some(run.select(&config, &code, sides, &installer, &mut plan, results_dir)?)
    } else {
        None
    };
    run.setup_caches(&config, sides, &plan)?;
    let seed = config.sampling.seed.unwrap_or_else(rand::random);
    let mut floors = run.floors(&config, &code, sides[0], &plan, seed)?;
    let mut sampled = run.measure(&config, sides, &plan, &floors.judged_against, seed);
    run.name_broken_modules(&mut plan, &mut sampled);
    let importtime = run.importtime(&config, sides)?;

    let t = Instant::now();
    let benchmarks = plan.benchmarks;
    let comparisons = analysis::compare(
        &benchmarks,
        &sampled,
        &config.thresholds,
        &floors.judged_against,
    );
    if job.calibrate {
        floors.store_calibration(
            &benchmarks,
            &sampled,
            &config,
            &code.base_commit,
            run.progress,
        )?;
    }
    let mut summary = Summary::of(&comparisons, scheduler::failures(&sampled.dropped));
    if selection.is_some() && comparisons.is_empty() && sampled.dropped.is_empty() {
        // Nothing the change can affect: that is a finding, not a lack of evidence.
        summary.verdict = crate::stats::Verdict::NoChange;
    }
    run.timeline.record("analyse", t, None);
    let quality = quality(&config, &benchmarks, sides);
    let calibration = floors.summary(job.calibrate, &config.thresholds);
    let report = Report {
        schema_version: report::SCHEMA_VERSION.into(),
        tool: Tool::this(),
        repository: job.repo.clone(),
        base: Revision {
            reference: job.base.clone(),
            commit: code.base_commit,
        },
        head: Revision {
            reference: job.head().to_owned(),
            commit: code.head_commit,
        },
        machine: Machine::read(),
        python: crate::python::version(&run.runner, sides[0], &run.work.path),
        seed,
        sampling: SamplingSummary {
            config: config.sampling,
            rounds: sampled.rounds,
            looks: sampled.looks,
            plan: sampled.plan.clone(),
            stopped_by: sampled.stopped_by,
        },
        thresholds: config.thresholds,
        fail_on_regression: config.fail_on_regression,
        benchmarks,
        samples: sampled.pairs,
        dropped: sampled.dropped,
        comparisons,
        importtime,
        quality,
        spans: run.timeline.spans(),
        summary,
        selection,
        shard: job.options.shard,
        calibration,
    };
    results::write(results_dir, &report)?;
    Ok(report)
}

/// What every phase of one comparison uses: the job, the host's directories, the process
/// runner, the timeline its spans go to and the progress lines.
struct Phases<'a> {
    job: &'a Job,
    cache_dir: PathBuf,
    /// The run's scratch directory (worktrees, venvs, sample servers), removed with it.
    work: Workdir,
    /// The results' `logs/`, created by the install phase.
    logs: PathBuf,
    runner: SystemRunner,
    timeline: Timeline,
    progress: &'a mut dyn FnMut(String),
}

/// The two checkouts.
struct Code {
    mirror: checkout::Mirror,
    base_commit: String,
    head_commit: String,
    /// The base's and the head's worktree.
    paths: [PathBuf; 2],
}

/// The benchmarks to measure, and what the asv suite's discovery left for later phases.
struct Plan {
    benchmarks: Vec<crate::bench::Benchmark>,
    /// The whole suite's size, shards included: `benchvm merge` runs Benjamini–Hochberg
    /// over all shards, so settling and the blind-spot warning count every benchmark.
    suite_size: usize,
    asv: Option<AsvSuite>,
}

struct AsvSuite {
    caches: [Vec<(String, asv::SetupCache)>; 2],
    broken: Vec<(Side, asv::Broken)>,
}

/// The host's noise floors: stored ones, those this run measured, and the ones it judges
/// against (none when the run is itself a calibration).
struct Floors {
    file: PathBuf,
    stored: Calibration,
    judged_against: BTreeMap<String, f64>,
    calibrated_now: Vec<String>,
}

impl Phases<'_> {
    fn progress(&mut self, line: String) {
        (self.progress)(line)
    }

    /// The mirror fetched, both refs resolved and checked out as worktrees.
    fn check_out(&mut self) -> Result<Code> {
        let t = Instant::now();
        let job = self.job;
        self.progress(format!(
            "checking out {} and {} from {}",
            job.base,
            job.head(),
            job.repo
        ));
        let mirror = checkout::mirror(&self.cache_dir, &job.repo, job.mirror_name.as_deref())?;
        let base_commit = checkout::resolve(&mirror, &job.base)?;
        let head_commit = checkout::resolve(&mirror, job.head())?;
        let paths = [self.work.path.join("base"), self.work.path.join("head")];
        checkout::worktree(&mirror, &base_commit, &paths[0])?;
        checkout::worktree(&mirror, &head_commit, &paths[1])?;
        self.work.track_worktrees(&mirror.path);
        self.timeline
            .record("checkout", t, Some(Cache::from_warm(mirror.warm)));
        Ok(Code {
            mirror,
            base_commit,
            head_commit,
            paths,
        })
    }

    /// `--config`, else the head's bench.yml or asv.conf.json; the job's overrides applied.
    fn configure(&mut self, code: &Code) -> Result<Config> {
        let job = self.job;
        let mut config = match &job.config {
            Some(path) => Config::load(path)?,
            None => head_config(&code.paths[1], job.head(), self.progress)?,
        };
        if let Some(seed) = job.options.seed {
            config.sampling.seed = Some(seed);
        }
        if let Some(rounds) = job.options.rounds {
            config.sampling.min_rounds = rounds;
            config.sampling.max_rounds = rounds;
        } else if job.calibrate {
            // A floor bounds a bias that more rounds of a comparison cannot remove: the
            // calibration buys a tight bound once, with four times the rounds (settled
            // benchmarks still stop).
            config.sampling.max_rounds *= CALIBRATION_ROUNDS;
            config.sampling.time_budget *= CALIBRATION_ROUNDS;
        }
        Ok(config)
    }

    /// A virtual environment per side with its checkout installed.
    fn install(&mut self, config: &Config, code: &Code) -> Result<(Installer, Vec<SideEnv>)> {
        let installer = Installer::find(config, &self.cache_dir)?.for_head(&format!(
            "{} {}",
            self.job.mirror_name.as_deref().unwrap_or(&self.job.repo),
            self.job.head_cache.as_deref().unwrap_or(self.job.head())
        ))?;
        if crate::measure::confine::abi().is_none() {
            self.progress(
                "warning: this kernel has no Landlock: the benchmarked code is not confined \
                 (it can write wherever the agent can)"
                    .into(),
            );
        }
        std::fs::create_dir_all(&self.logs).map_err(|e| Error::io("create", &self.logs, e))?;
        let mut sides = Vec::new();
        for (side, checkout) in Side::BOTH.into_iter().zip(&code.paths) {
            let t = Instant::now();
            let cache = Cache::from_warm(installer.cache_warm(side));
            let how = if installer.uv.is_some() {
                "uv"
            } else {
                "venv + pip"
            };
            self.progress(format!("installing {side} ({how})"));
            let venv = self.work.path.join(format!("{side}-venv"));
            let tmp = self.work.path.join(format!("{side}-tmp"));
            let log = self.logs.join(format!("install-{side}.log"));
            sides.push(installer.install(
                &self.runner,
                config,
                side,
                checkout,
                &venv,
                &tmp,
                &log,
            )?);
            self.timeline
                .record(&format!("install {side}"), t, Some(cache));
        }
        if config.micro.asv.is_some() {
            for side in &mut sides {
                let root = asv_cache_root(&self.work.path, side.side);
                // setup_cache writes its results there.
                std::fs::create_dir_all(&root).map_err(|e| Error::io("create", &root, e))?;
                if let Some(writable) = &mut side.writable {
                    writable.push(root.clone());
                }
                side.env
                    .push((asv::CACHE_VAR.into(), root.display().to_string()));
                side.env
                    .push((asv::REPEAT_VAR.into(), config.sampling.repeat.to_string()));
            }
        }
        Ok((installer, sides))
    }

    /// Every layer's benchmarks (the asv suite discovered on both sides), this shard's share.
    fn plan(
        &mut self,
        config: &Config,
        sides: [&SideEnv; 2],
        weights: &BTreeMap<String, f64>,
    ) -> Result<Plan> {
        let t = Instant::now();
        let mut benchmarks = layers::from_config(config);
        let mut asv_suite = None;
        if let Some(suite) = &config.micro.asv {
            let harness = asv::install_harness(&self.work.path)?;
            let found: Vec<_> = sides
                .iter()
                .map(|side| {
                    asv::discover(
                        &self.runner,
                        &harness,
                        suite,
                        side,
                        &self.work.path,
                        config.sampling.timeout,
                    )
                })
                .collect::<Result<_>>()?;
            let [b, h]: [asv::Suite; 2] = found.try_into().expect("two sides");
            let (micro, caches, broken) = asv::union(b, h);
            for (side, broken) in &broken {
                self.progress(format!(
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
            asv_suite = Some(AsvSuite { caches, broken });
        }
        let suite_size = benchmarks.len();
        if let Some(shard) = self.job.options.shard {
            let ids: Vec<String> = benchmarks.iter().map(|b| b.id.clone()).collect();
            let of = crate::shard::assign(&ids, weights, shard.count);
            let mut of = of.into_iter();
            benchmarks.retain(|_| of.next() == Some(shard.index));
            self.progress(format!(
                "shard {shard}: {} of {suite_size} benchmark(s)",
                benchmarks.len()
            ));
        }
        self.timeline.record("plan", t, None);
        self.progress(format!("planned {} benchmark(s)", benchmarks.len()));
        Ok(Plan {
            benchmarks,
            suite_size,
            asv: asv_suite,
        })
    }

    /// `selective: true`: only the benchmarks the change can affect stay in the plan. A
    /// selection that cannot be made measures everything and says why.
    fn select(
        &mut self,
        config: &Config,
        code: &Code,
        sides: [&SideEnv; 2],
        installer: &Installer,
        plan: &mut Plan,
        results_dir: &Path,
    ) -> Result<report::Selection> {
        let t = Instant::now();
        let database = self.cache_dir.join("selection").join(format!(
            "{}.sqlite",
            code.mirror
                .path
                .file_name()
                .map_or_else(|| "survey".into(), |n| n.to_string_lossy())
        ));
        if let Some(dir) = database.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let cx = in_compare::Context {
            git_dir: &code.mirror.path,
            base_commit: &code.base_commit,
            head_commit: &code.head_commit,
            base: sides[0],
            head: sides[1],
            database: &database,
            scratch: &self.work.path,
            cache: &self.cache_dir,
            logs: &self.logs,
            uv: installer.uv.as_deref(),
            python: &installer.python,
            timeout: config.sampling.timeout,
        };
        let selection = match in_compare::choose(&self.runner, &cx, &plan.benchmarks, self.progress)
        {
            Ok(chosen) => {
                self.timeline.record(
                    "survey and select",
                    t,
                    Some(Cache::from_warm(chosen.reused)),
                );
                plan.benchmarks.retain(|b| chosen.run.contains(&b.id));
                chosen.selection
            }
            Err(e) => {
                // Safe, not silent: everything is measured and the report says why.
                self.progress(format!(
                    "selective: no selection ({e}); measuring everything"
                ));
                self.timeline.record("survey and select", t, None);
                in_compare::fallback(&plan.benchmarks, e.to_string())
            }
        };
        // The database goes back with the results, for SQL (`survey`, `dependencies`).
        if let Ok(store) = crate::select::store::Store::open(&database) {
            let _ = store.export(&results_dir.join("selection.sqlite"));
        }
        Ok(selection)
    }

    /// The asv suite's `setup_cache` results, once per side, for the planned benchmarks.
    fn setup_caches(&mut self, config: &Config, sides: [&SideEnv; 2], plan: &Plan) -> Result<()> {
        let Some(suite) = &plan.asv else {
            return Ok(());
        };
        let t = Instant::now();
        for (side, caches) in sides.into_iter().zip(&suite.caches) {
            asv::prepare_caches(
                &self.runner,
                side,
                &asv_cache_root(&self.work.path, side.side),
                &plan.benchmarks,
                caches,
                config.sampling.timeout,
                self.progress,
            )?;
        }
        if suite.caches.iter().any(|c| !c.is_empty()) {
            self.timeline.record("setup_cache", t, None);
        }
        Ok(())
    }

    /// The host's noise floors for the planned benchmarks: the stored ones, and an A/A of
    /// the base first for those it has none of (`thresholds.calibration: auto`).
    fn floors(
        &mut self,
        config: &Config,
        code: &Code,
        base: &SideEnv,
        plan: &Plan,
        seed: u64,
    ) -> Result<Floors> {
        let file = calibration::path(&self.cache_dir, &code.mirror.path);
        let progress = &mut *self.progress;
        let mut stored = Calibration::load(&file, &mut |w| progress(format!("warning: {w}")));
        let mut calibrated_now = Vec::new();
        if !self.job.calibrate && config.thresholds.calibration == CalibrationMode::Auto {
            let missing = stored.missing(plan.benchmarks.iter().map(|b| b.id.as_str()));
            if !missing.is_empty() {
                let t = Instant::now();
                let planned: Vec<_> = plan
                    .benchmarks
                    .iter()
                    .filter(|b| missing.contains(&b.id))
                    .cloned()
                    .collect();
                self.progress(format!(
                    "calibrating: this host has no noise floor for {} benchmark(s); an A/A of \
                     the base first (once per host; thresholds.calibration: off skips it)",
                    planned.len()
                ));
                let a_a = a_a(
                    &self.runner,
                    &self.work.path,
                    &planned,
                    base,
                    config,
                    seed,
                    self.progress,
                );
                stored.record(
                    analysis::floors(&planned, &a_a, config.thresholds.alpha),
                    &code.base_commit,
                );
                stored.save(&file)?;
                calibrated_now = missing;
                self.timeline.record("calibrate", t, None);
            }
        }
        // A calibration run measures the floors; it is not judged against them.
        let judged_against = if self.job.calibrate {
            Default::default()
        } else {
            stored.floors()
        };
        Ok(Floors {
            file,
            stored,
            judged_against,
            calibrated_now,
        })
    }

    /// Rounds of randomized pairs until every benchmark is settled or the rounds or the
    /// time budget run out (ARCHITECTURE §3).
    fn measure(
        &mut self,
        config: &Config,
        sides: [&SideEnv; 2],
        plan: &Plan,
        floors: &BTreeMap<String, f64>,
        seed: u64,
    ) -> scheduler::Sampled {
        let cpu = config
            .sampling
            .pin_cpu
            .then(crate::measure::runner::sample_cpu)
            .flatten();
        let servers = crate::measure::server::Servers::new(&self.work.path, cpu).with_lockstep(
            config
                .sampling
                .lockstep
                .then_some(crate::measure::server::LOCKSTEP_BLOCKS),
        );
        let probe = crate::bench::Probe {
            runner: &self.runner,
            scratch: &self.work.path,
            timeout: config.sampling.timeout,
            servers: config.sampling.fork.then_some(&servers),
            cpu,
        };
        let t = Instant::now();
        let looks = scheduler::looks(&config.sampling);
        (self.progress)(format!(
            "measuring: looks after rounds {}, budget {:.0} s, seed {seed}",
            looks
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            config.sampling.time_budget.as_secs_f64()
        ));
        let suite_size = plan.suite_size;
        if let Some(needed) = blind_spot(suite_size, &config.sampling, &config.thresholds) {
            (self.progress)(format!(
                "warning: with {suite_size} benchmarks and at most {} rounds a lone change \
                 cannot be flagged; sampling.max_rounds {needed} or more can",
                config.sampling.max_rounds
            ));
        }
        let sampled = scheduler::sample(
            &plan.benchmarks,
            sides,
            &probe,
            &config.sampling,
            seed,
            &mut |so_far| {
                let now = analysis::compare(&plan.benchmarks, so_far, &config.thresholds, floors);
                analysis::settled(&now, config.thresholds.alpha, 2 * suite_size)
            },
            self.progress,
        );
        // The sample servers (and whatever their children left) go with the sampling.
        drop(servers);
        self.timeline.record("measure", t, None);
        attribute_layers(&self.timeline, &plan.benchmarks, &sampled);
        sampled
    }

    /// A module that cannot be imported is named where its benchmarks would have been;
    /// with shards, by the first shard alone.
    fn name_broken_modules(&self, plan: &mut Plan, sampled: &mut scheduler::Sampled) {
        let Some(suite) = &plan.asv else { return };
        if self.job.options.shard.is_some_and(|s| s.index != 1) {
            return;
        }
        for (side, broken) in &suite.broken {
            let planned = asv::broken_benchmark(broken);
            sampled.dropped.push(scheduler::Dropped {
                benchmark: planned.id.clone(),
                reason: format!("{side}: cannot import it: {}", broken.error),
                skipped: false,
            });
            if !plan.benchmarks.iter().any(|b| b.id == planned.id) {
                plan.benchmarks.push(planned);
            }
        }
    }

    /// The import-time breakdown. It is not a benchmark: the first shard alone takes it.
    fn importtime(&mut self, config: &Config, sides: [&SideEnv; 2]) -> Result<Option<ImportTime>> {
        match &config.importtime {
            Some(module) if self.job.options.shard.is_none_or(|s| s.index == 1) => {
                let t = Instant::now();
                let it = importtime_breakdown(&self.runner, module, sides, &self.work.path)?;
                self.timeline.record("importtime", t, None);
                Ok(Some(it))
            }
            _ => Ok(None),
        }
    }
}

impl Floors {
    /// A calibration run stores the floors it measured for every benchmark.
    fn store_calibration(
        &mut self,
        benchmarks: &[crate::bench::Benchmark],
        sampled: &scheduler::Sampled,
        config: &Config,
        base_commit: &str,
        progress: &mut dyn FnMut(String),
    ) -> Result<()> {
        self.stored.record(
            analysis::floors(benchmarks, sampled, config.thresholds.alpha),
            base_commit,
        );
        self.stored.save(&self.file)?;
        self.calibrated_now = benchmarks.iter().map(|b| b.id.clone()).collect();
        progress(format!(
            "stored the noise floors of {} benchmark(s) in {}",
            self.calibrated_now.len(),
            self.file.display()
        ));
        Ok(())
    }

    /// What the report says of calibration: present when this run measured floors.
    fn summary(&self, a_a_run: bool, thresholds: &Thresholds) -> Option<CalibrationRun> {
        (a_a_run || !self.calibrated_now.is_empty()).then(|| CalibrationRun {
            a_a_run,
            above_delta: self
                .calibrated_now
                .iter()
                .filter_map(|id| {
                    let floor = self.stored.benchmarks.get(id)?.floor_percent?;
                    (floor > thresholds.min_effect_percent).then(|| (id.clone(), floor))
                })
                .collect(),
            calibrated_now: self.calibrated_now.clone(),
        })
    }
}

/// The integration runs' quality files, for the benchmarks that ran.
fn quality(
    config: &Config,
    benchmarks: &[crate::bench::Benchmark],
    sides: [&SideEnv; 2],
) -> Vec<Quality> {
    config
        .integration
        .iter()
        .filter_map(|i| {
            let file = i.quality.as_ref()?;
            let id = format!("{}/{}", crate::bench::Layer::Integration.name(), i.run.name);
            if !benchmarks.iter().any(|b| b.id == id) {
                return None;
            }
            Some(read_quality(&id, file, sides[0], sides[1]))
        })
        .collect()
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
/// fewer: the smallest exact signed-rank p-value is 2^−n, divided by the last look's share
/// of α, and Benjamini–Hochberg needs it at α/m for a single discovery among
/// m = 2·benchmarks.
fn blind_spot(benchmarks: usize, sampling: &Sampling, thresholds: &Thresholds) -> Option<u32> {
    let m = 2.0 * benchmarks as f64;
    let flaggable = |rounds: u32| {
        let mut config = *sampling;
        config.max_rounds = rounds.max(config.min_rounds);
        let plan = scheduler::looks(&config);
        let last = scheduler::alpha_share(plan.len() as u32, &plan, config.max_rounds - 1);
        0.5f64.powi(rounds as i32) / last <= thresholds.alpha / m
    };
    if benchmarks == 0 || flaggable(sampling.max_rounds) {
        return None;
    }
    (sampling.max_rounds..200).find(|&r| flaggable(r))
}

fn head_config(checkout: &Path, head: &str, progress: &mut dyn FnMut(String)) -> Result<Config> {
    // Named after the ref, not the scratch worktree it happens to sit in.
    let path = checkout.join("bench.yml");
    // The head's own file (git may have written it as a link into its tree), read before
    // any of its code runs; a link to a device or a FIFO is refused, not read.
    match side_file::read_text(&path, side_file::SMALL, Links::Follow) {
        Ok(text) => {
            progress(format!("reading {head}:bench.yml"));
            return Ok(Config::parse(&text, &format!("{head}:bench.yml"))?);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Usage(format!("{head}:bench.yml {e}"))),
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
    timeline: &Timeline,
    benchmarks: &[crate::bench::Benchmark],
    sampled: &scheduler::Sampled,
) {
    let origin = timeline.spans().last().map_or(0.0, |s| s.start_s);
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
            timeline.push(crate::spans::Span {
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
                writable: side.writable.clone(),
            };
            let outcome = runner
                .run(&spec)
                .map_err(|e| Error::caused("run python -X importtime", e))?;
            if let Some(failure) = outcome.failure() {
                let tail = side_file::last_line(&stderr).unwrap_or_default();
                return Err(Error::infra(
                    format!("import {module} on {}", side.side),
                    format!("{failure}: {tail}"),
                ));
            }
            let text = side_file::read(&stderr, side_file::LARGE, Links::Refuse)
                .map_err(|e| Error::io("read", &stderr, e))?;
            runs[i].push(importtime::parse(&String::from_utf8_lossy(&text)));
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
        // Written by the side's integration run, in its checkout: it may be anything.
        let text = side_file::read_text(&path, side_file::SMALL, Links::Refuse)
            .map_err(|e| format!("{}: {e}", file.display()))?;
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
            let _ = crate::git::run(Some(mirror), &["worktree", "prune"]);
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
        // 11 rounds are one look (a look at 10 just before 11 is left out): 2^-11 passes.
        assert_eq!(blind_spot(26, &sampling, &thresholds), Some(11));
        // 60 benchmarks, 8 to 12 rounds: looks at 8 and 12, the last with 1 − (8/12)² of α,
        // and 2^-12/0.556 > 0.05/120. 13 rounds are looks at 8 and 13 (12 is left out), and
        // 2^-13/(1 − (8/13)²) ≤ 0.05/120.
        sampling.min_rounds = 8;
        sampling.max_rounds = 12;
        assert_eq!(blind_spot(60, &sampling, &thresholds), Some(13));
        sampling.min_rounds = 10;
        sampling.max_rounds = 40;
        assert_eq!(blind_spot(1000, &sampling, &thresholds), None);
    }
}
