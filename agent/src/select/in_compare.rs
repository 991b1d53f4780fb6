//! Selective comparisons (`selective: true` in bench.yml, ARCHITECTURE §4): survey the base (or
//! reuse the survey of the same commit, environment and benchmarks), select from the
//! base..head diff with hotfiles included, and say what ran, what was skipped, and why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::impacted::{self, Hotfiles, Options};
use super::local_loop::name_status;
use super::store::{Store, Survey};
use super::{fingerprint, survey};
use crate::bench::{Benchmark, Layer, SideEnv};
use crate::error::{Error, Result};
use crate::measure::runner::{ProcessRunner, RunSpec};
use crate::python::environment_hash;
use crate::report::{Explained, Selection};

/// The default share of the suite above which a covered file is a hotfile.
pub const HOTFILE_THRESHOLD: f64 = 0.5;

/// A survey may run far slower than a measured run: coverage traces every line.
const SURVEY_SLOWDOWN: u32 = 10;

/// What the selection needs to know about the comparison.
#[derive(Debug)]
pub struct Context<'a> {
    /// The mirror's git directory (both commits are in it).
    pub git_dir: &'a Path,
    pub base_commit: &'a str,
    pub head_commit: &'a str,
    pub base: &'a SideEnv,
    pub head: &'a SideEnv,
    /// The selection database kept on this host between runs.
    pub database: &'a Path,
    /// The run's scratch directory.
    pub scratch: &'a Path,
    /// The host's cache (coverage.py is installed there when the venv has none).
    pub cache: &'a Path,
    /// Where install output goes.
    pub logs: &'a Path,
    pub uv: Option<&'a Path>,
    /// The interpreter the venvs were made from (outside anything a side may write).
    pub python: &'a Path,
    /// One measured run's timeout.
    pub timeout: Duration,
}

/// The selection made.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Ids of the benchmarks to measure.
    pub run: BTreeSet<String>,
    pub selection: Selection,
    /// The stored survey was reused.
    pub reused: bool,
}

/// Surveys (or reuses the survey of) the base and selects what the diff can affect.
pub fn choose<R: ProcessRunner>(
    runner: &R,
    cx: &Context,
    benchmarks: &[Benchmark],
    progress: &mut dyn FnMut(String),
) -> Result<Chosen> {
    let base_python = venv_python(cx.base)?;
    let head_python = venv_python(cx.head)?;
    let base_env = environment_hash(&base_python, &cx.base.checkout)?;
    let ids: BTreeSet<&str> = benchmarks.iter().map(|b| b.id.as_str()).collect();
    let mut store = Store::open(cx.database).map_err(store_err)?;
    let stored = store.survey().map_err(store_err)?.filter(|s| {
        s.commit == cx.base_commit
            && s.environment_hash == base_env
            && s.normaliser_version == fingerprint::NORMALISER_VERSION
            && s.benchmarks
                .iter()
                .map(|b| b.benchmark.as_str())
                .collect::<BTreeSet<_>>()
                == ids
    });
    let reused = stored.is_some();
    let survey = match stored {
        Some(s) => {
            progress(format!(
                "selective: reusing the survey of base {}",
                &cx.base_commit[..cx.base_commit.len().min(10)]
            ));
            s
        }
        None => {
            let s = survey_base(runner, cx, benchmarks, base_env, progress)?;
            store.replace_survey(&s).map_err(store_err)?;
            s
        }
    };

    let diff = git(
        cx.git_dir,
        &[
            "diff",
            "--name-status",
            "-M",
            cx.base_commit,
            cx.head_commit,
        ],
    )?;
    let changes = name_status(&diff, &cx.head.checkout);
    let opts = Options {
        environment_hash: environment_hash(&head_python, &cx.head.checkout)?,
        hotfile_threshold: HOTFILE_THRESHOLD,
        hotfiles: Hotfiles::Include,
    };
    let picked = impacted::select(&survey, &changes, &opts);
    let mut run = BTreeSet::new();
    let mut selection = Selection {
        ran: 0,
        skipped: Vec::new(),
        hotfiles_changed: picked
            .changed_hotfiles
            .iter()
            .map(|(f, _)| f.clone())
            .collect(),
        ran_because: Vec::new(),
        fallback: None,
    };
    for d in &picked.decisions {
        let explained = Explained {
            benchmark: d.benchmark.clone(),
            reason: d.reasons.join("; "),
        };
        if d.run {
            run.insert(d.benchmark.clone());
            selection.ran_because.push(explained);
        } else {
            selection.skipped.push(explained);
        }
    }
    selection.ran = run.len() as u32;
    progress(format!(
        "selective: {} of {} benchmark(s) to measure, {} skipped ({} file(s) changed)",
        run.len(),
        benchmarks.len(),
        selection.skipped.len(),
        changes.len()
    ));
    Ok(Chosen {
        run,
        selection,
        reused,
    })
}

/// The report's selection when none could be made: everything ran, and why.
pub fn fallback(benchmarks: &[Benchmark], why: String) -> Selection {
    Selection {
        ran: benchmarks.len() as u32,
        skipped: Vec::new(),
        hotfiles_changed: Vec::new(),
        ran_because: Vec::new(),
        fallback: Some(why),
    }
}

fn survey_base<R: ProcessRunner>(
    runner: &R,
    cx: &Context,
    benchmarks: &[Benchmark],
    environment_hash: String,
    progress: &mut dyn FnMut(String),
) -> Result<Survey> {
    let rec = survey::Recorder::install(&cx.scratch.join("survey"))?;
    let python_path = coverage_path(runner, cx)?;
    // From the mirror, not the checkout: the base side's code may have rewritten the
    // checkout's `.git` (a config with hooks would run here, unconfined).
    let files = git(
        cx.git_dir,
        &["ls-tree", "-r", "--name-only", cx.base_commit],
    )?;
    let files: Vec<String> = files.lines().map(str::to_owned).collect();
    let installed = installed_dirs(runner, cx, &files)?;
    let map = survey::SourceMap::new(&cx.base.checkout, installed.clone(), files);
    let mut include = vec![cx.base.checkout.clone()];
    include.extend(installed);
    let mut surveyed = Vec::new();
    let target = |argv| survey::Target {
        argv,
        cwd: &cx.base.checkout,
        env: &cx.base.env,
        include: &include,
        python_path: &python_path,
        timeout: cx.timeout * SURVEY_SLOWDOWN,
        writable: cx.base.writable.as_deref(),
    };
    // Micro-benchmarks of one module are surveyed together, at the cost of one import.
    let mut i = 0;
    while i < benchmarks.len() {
        let batch = match micro_module(&benchmarks[i]) {
            Some(first) => benchmarks[i..]
                .iter()
                .take_while(|b| micro_module(b) == Some(first))
                .count(),
            None => 1,
        };
        let group = &benchmarks[i..i + batch];
        progress(format!(
            "selective: surveying base {}{} ({}/{})",
            group[0].id,
            if batch > 1 {
                format!(" and {} more of its module", batch - 1)
            } else {
                String::new()
            },
            i + batch,
            benchmarks.len()
        ));
        let raws = match micro_module(&group[0]) {
            Some((python, suite, module)) if batch > 1 => {
                let ids: Vec<String> = group.iter().map(asv_id).collect();
                survey::run_each(
                    runner,
                    &rec,
                    &target(vec![]),
                    python,
                    Path::new(suite),
                    module,
                    &ids,
                )?
            }
            _ => vec![survey::run(
                runner,
                &rec,
                &target(survey_argv(&rec, &group[0])),
            )?],
        };
        for (b, raw) in group.iter().zip(&raws) {
            surveyed.push(survey::surveyed(&b.id, raw, &map));
        }
        i += batch;
    }
    Ok(Survey {
        commit: cx.base_commit.to_owned(),
        dirty: vec![],
        environment_hash,
        normaliser_version: fingerprint::NORMALISER_VERSION,
        benchmarks: surveyed,
    })
}

/// (python, suite, module) of a micro-benchmark of the ASV suite whose module is known.
fn micro_module(b: &Benchmark) -> Option<(&str, &str, &str)> {
    match b.argv.as_slice() {
        [python, harness, mode, suite, _id, module]
            if b.layer == Layer::Micro && mode == "run" && harness.ends_with("asv_harness.py") =>
        {
            Some((python, suite, module))
        }
        _ => None,
    }
}

/// The id the ASV harness knows a micro-benchmark by (without the layer's prefix).
fn asv_id(b: &Benchmark) -> String {
    b.argv.get(4).cloned().unwrap_or_default()
}

/// A micro-benchmark of the ASV suite is surveyed with one call; any other benchmark is
/// its command, once.
fn survey_argv(rec: &survey::Recorder, b: &Benchmark) -> Vec<String> {
    match b.argv.as_slice() {
        [python, harness, mode, suite, id, module @ ..]
            if b.layer == Layer::Micro && mode == "run" && harness.ends_with("asv_harness.py") =>
        {
            let mut argv = rec.asv_once(python, Path::new(suite), id);
            argv.extend(module.iter().cloned());
            argv
        }
        _ => b.argv.clone(),
    }
}

/// Runs `python -c code` in the base side's environment `env` (a minute at most); its
/// stdout, or an error that says what it was for.
fn python<R: ProcessRunner>(
    runner: &R,
    cx: &Context,
    env: Vec<(String, String)>,
    code: &str,
    action: &str,
) -> Result<String> {
    let argv = vec!["python".into(), "-c".into(), code.into()];
    let out = crate::measure::runner::capture(
        runner,
        argv,
        cx.scratch,
        &env,
        Duration::from_secs(60),
        Some(vec![]),
    )
    .map_err(|e| Error::caused("run python", e))?;
    match out.outcome.failure() {
        Some(failure) => Err(Error::infra(action, failure)),
        None => Ok(out.stdout),
    }
}

/// `PYTHONPATH` additions that make coverage.py importable: none when the venv has it,
/// otherwise a target directory in the cache, installed once per interpreter ABI.
fn coverage_path<R: ProcessRunner>(runner: &R, cx: &Context) -> Result<Vec<PathBuf>> {
    let probe = |extra: &str| -> Result<Option<String>> {
        let mut env = cx.base.env.clone();
        env.retain(|(k, _)| k != "PYTHONPATH");
        env.push(("PYTHONPATH".into(), extra.to_owned()));
        let code = "import sys\ntry:\n    import coverage\n    print('ok')\nexcept ImportError:\n    print(sys.implementation.cache_tag)";
        let text = python(runner, cx, env, code, "look for coverage.py")?;
        Ok((text.trim() != "ok").then(|| text.trim().to_owned()))
    };
    let Some(tag) = probe("")? else {
        return Ok(Vec::new());
    };
    // The tag is the side's own output: a path component of the host's cache only if it
    // looks like one (cpython-311, pypy39).
    if tag.is_empty()
        || tag.starts_with('.')
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(Error::infra(
            "look for coverage.py",
            format!(
                "the interpreter's cache tag {} is not a plain name",
                crate::report::inert::line(&tag)
            ),
        ));
    }
    let dir = cx.cache.join("survey-tools").join(&tag);
    if probe(&dir.display().to_string())?.is_none() {
        return Ok(vec![dir]);
    }
    let log = cx.logs.join("install-coverage.log");
    let target = dir.display().to_string();
    // Unconfined (it writes the host's cache), so with the interpreter the venv was made
    // from (install.rs refuses one a side could have written), never the venv's own: a side
    // may have written the venv (a `.pth` runs at start).
    let python = cx.python.display().to_string();
    let argv: Vec<String> = match cx.uv {
        Some(uv) => vec![
            uv.display().to_string(),
            "pip".into(),
            "install".into(),
            "--quiet".into(),
            "--python".into(),
            python,
            "--target".into(),
            target,
            "coverage>=7,<8".into(),
        ],
        None => vec![
            python,
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--quiet".into(),
            "--target".into(),
            target,
            "coverage>=7,<8".into(),
        ],
    };
    let spec = RunSpec {
        argv,
        cwd: cx.scratch.to_owned(),
        // None of the side's variables (its TMPDIR and cache are the side's to write): the
        // agent's own environment, and the shared uv cache, which only trusted code writes.
        env: vec![(
            "UV_CACHE_DIR".into(),
            cx.cache.join("uv").display().to_string(),
        )],
        timeout: Duration::from_secs(600),
        stdout: Some(log.clone()),
        stderr: Some(log.clone()),
        pad: 0,
        cpu: None,
        writable: None,
    };
    let outcome = runner
        .run(&spec)
        .map_err(|e| Error::caused("install coverage.py", e))?;
    if let Some(failure) = outcome.failure() {
        return Err(Error::infra(
            "install coverage.py for the survey",
            format!("{failure} (log: {})", log.display()),
        ));
    }
    Ok(vec![dir])
}

/// The project's installed copies: `site-packages/<name>` (or `<name>.py`) for every
/// top-level package or module the checkout holds (`src/` layouts included).
fn installed_dirs<R: ProcessRunner>(
    runner: &R,
    cx: &Context,
    files: &[String],
) -> Result<Vec<PathBuf>> {
    let code =
        "import sysconfig\np = sysconfig.get_paths()\nprint(p['purelib']); print(p['platlib'])";
    let libs: BTreeSet<PathBuf> =
        python(runner, cx, cx.base.env.clone(), code, "find site-packages")?
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
    let names: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.ends_with(".py"))
        .map(|f| f.strip_prefix("src/").unwrap_or(f))
        .map(|f| f.split('/').next().unwrap_or(f))
        .collect();
    let mut dirs = Vec::new();
    for lib in &libs {
        for name in &names {
            let p = lib.join(name);
            if p.exists() {
                dirs.push(p);
            }
        }
    }
    Ok(dirs)
}

fn venv_python(side: &SideEnv) -> Result<PathBuf> {
    side.env
        .iter()
        .find(|(k, _)| k == "VIRTUAL_ENV")
        .map(|(_, v)| Path::new(v).join("bin/python"))
        .ok_or_else(|| Error::infra("survey", format!("the {} side has no venv", side.side)))
}

fn store_err(e: super::store::StoreError) -> Error {
    Error::caused("use the selection database", e)
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    crate::git::run(Some(dir), args).map_err(|e| match e {
        crate::git::GitError::Failed { command, stderr } => {
            Error::infra(format!("git {command}"), stderr)
        }
        spawn => Error::caused("run git", spawn),
    })
}
