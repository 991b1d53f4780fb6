//! Surveying one benchmark (ARCHITECTURE §4): run it once with the recorder
//! (`survey_recorder.py`, installed as `sitecustomize.py` first on `PYTHONPATH`, so every
//! Python process of the command runs under coverage.py from its first import), then turn
//! the covered lines into block dependencies with [`fingerprint`], the files it opened into
//! data-file dependencies, and whatever makes its coverage untrustworthy into
//! `always_affected`. Installed copies of the project (a non-editable install puts them in
//! the venv's site-packages) are mapped back to the checkout's files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::fingerprint;
use super::store::{Dependency, Surveyed};
use crate::error::{Error, Result};
use crate::measure::runner::{ProcessRunner, RunSpec};
use crate::side_file::{self, Links};

const RECORDER: &str = include_str!("survey_recorder.py");

/// What the recorder reports for one benchmark, all its processes merged.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Raw {
    /// Absolute path → covered line numbers.
    pub files: BTreeMap<String, Vec<u32>>,
    pub opened: Vec<String>,
    pub untrusted: Vec<String>,
    pub error: Option<String>,
    /// What the benchmark's one call returned (its repr), when the command is the ASV
    /// harness's `once` and it got that far.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// The recorder and the ASV harness, written into a scratch directory.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Holds `sitecustomize.py`: goes first on `PYTHONPATH`.
    dir: PathBuf,
    /// `asv_harness.py`, whose `once` mode a micro-benchmark is surveyed with.
    pub asv_harness: PathBuf,
}

impl Recorder {
    pub fn install(scratch: &Path) -> Result<Self> {
        let dir = scratch.join("survey-recorder");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let path = dir.join("sitecustomize.py");
        std::fs::write(&path, RECORDER).map_err(|e| Error::io("write", &path, e))?;
        let asv_harness = crate::layers::asv::install_harness(scratch)?;
        Ok(Self { dir, asv_harness })
    }

    /// The command that surveys ASV benchmark `id` of `suite` with `python`.
    pub fn asv_once(&self, python: &str, suite: &Path, id: &str) -> Vec<String> {
        vec![
            python.to_owned(),
            self.asv_harness.display().to_string(),
            "once".into(),
            suite.display().to_string(),
            id.to_owned(),
        ]
    }
}

/// One command to survey.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub argv: Vec<String>,
    pub cwd: &'a Path,
    /// Set on top of the inherited environment (a side's venv variables).
    pub env: &'a [(String, String)],
    /// Measured paths: the checkout, and the installed project's directories.
    pub include: &'a [PathBuf],
    /// Put on `PYTHONPATH` after the recorder (where coverage.py lives, when the
    /// interpreter has none).
    pub python_path: &'a [PathBuf],
    pub timeout: Duration,
    /// The side's writable paths ([`crate::bench::SideEnv::writable`]); the run may also
    /// write its report directory. `None`: unconfined.
    pub writable: Option<&'a [PathBuf]>,
}

/// Runs `target` once with the recorder and merges what its processes reported.
pub fn run<R: ProcessRunner>(runner: &R, rec: &Recorder, target: &Target) -> Result<Raw> {
    let out = tempfile::Builder::new()
        .prefix("survey-")
        .tempdir_in(&rec.dir)
        .map_err(|e| Error::io("create", &rec.dir, e))?;
    let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
    let outcome = runner
        .run(&spec(rec, target, out.path()))
        .map_err(|e| Error::caused(format!("start {:?}", target.argv[0]), e))?;
    let mut raw = merge(out.path())?;
    // The harness answers on stdout's last line.
    raw.outcome = answer(&stdout).as_ref().and_then(outcome_of);
    if let Some(failure) = outcome.failure() {
        raw.error = Some(match side_file::last_line(&stderr) {
            Some(t) => format!("{failure}: {t}"),
            None => failure,
        });
    }
    Ok(raw)
}

/// Surveys benchmarks `ids` of ASV module `module` of `suite` at the cost of one import
/// (`asv_harness.py once-each`: the module imported once, a forked child per benchmark,
/// each reporting as a fresh process would), each given `timeout`. `target.argv` is not
/// used; one report per id, in order.
pub fn run_each<R: ProcessRunner>(
    runner: &R,
    rec: &Recorder,
    target: &Target,
    python: &str,
    suite: &Path,
    module: &str,
    ids: &[String],
) -> Result<Vec<Raw>> {
    let out = tempfile::Builder::new()
        .prefix("survey-")
        .tempdir_in(&rec.dir)
        .map_err(|e| Error::io("create", &rec.dir, e))?;
    let mut argv = vec![
        python.to_owned(),
        rec.asv_harness.display().to_string(),
        "once-each".into(),
        suite.display().to_string(),
        out.path().display().to_string(),
        format!("{}", target.timeout.as_secs_f64()),
        module.to_owned(),
    ];
    argv.extend(ids.iter().cloned());
    let all = Target {
        argv,
        // Each child has the timeout; the parent only imports and waits.
        timeout: target.timeout.saturating_mul(ids.len() as u32) + Duration::from_secs(60),
        ..*target
    };
    let stderr = out.path().join("stderr");
    let outcome = runner
        .run(&spec(rec, &all, out.path()))
        .map_err(|e| Error::caused(format!("start {python:?}"), e))?;
    let whole = outcome
        .failure()
        .map(|failure| match side_file::last_line(&stderr) {
            Some(t) => format!("{failure}: {t}"),
            None => failure,
        });
    // The import left state the children would share: a fresh process per benchmark.
    let answer = answer(&out.path().join("stdout"));
    if answer.as_ref().and_then(|a| a.get("fork")) == Some(&serde_json::Value::Bool(false)) {
        return ids
            .iter()
            .map(|id| {
                let mut argv = rec.asv_once(python, suite, id);
                argv.push(module.to_owned());
                run(runner, rec, &Target { argv, ..*target })
            })
            .collect();
    }
    // What the parent and the processes it started reported (the import's subprocesses,
    // or a benchmark's started with an environment copied at import) counts for every
    // benchmark: a fresh process per benchmark would have had it too.
    let shared = merge(out.path())?;
    (0..ids.len())
        .map(|i| {
            let dir = out.path().join(i.to_string());
            if !dir.is_dir() {
                return Ok(Raw {
                    error: Some(whole.clone().unwrap_or_else(|| "it never ran".into())),
                    ..Raw::default()
                });
            }
            let mut raw = merge(&dir)?;
            for (path, lines) in &shared.files {
                let mine = raw.files.entry(path.clone()).or_default();
                mine.extend(lines);
                mine.sort_unstable();
                mine.dedup();
            }
            for (mine, theirs) in [
                (&mut raw.opened, &shared.opened),
                (&mut raw.untrusted, &shared.untrusted),
            ] {
                mine.extend(theirs.iter().cloned());
                mine.sort();
                mine.dedup();
            }
            let read = |name: &str| {
                side_file::read_text(&dir.join(name), side_file::LARGE, Links::Refuse).ok()
            };
            raw.outcome = read("answer")
                .and_then(|t| serde_json::from_str(&t).ok())
                .as_ref()
                .and_then(outcome_of);
            if let Some(e) = read("error") {
                raw.error = Some(e.trim().to_owned());
            } else if raw.outcome.is_none() {
                raw.error = Some(whole.clone().unwrap_or_else(|| "it gave no answer".into()));
            }
            if raw.error.is_none() {
                raw.error = shared.error.clone();
            }
            Ok(raw)
        })
        .collect()
}

/// The harness's answer: the JSON on the last non-blank line of its stdout.
fn answer(stdout: &Path) -> Option<serde_json::Value> {
    let tail = side_file::tail(stdout);
    let line = tail.lines().rev().find(|l| !l.trim().is_empty())?;
    serde_json::from_str(line).ok()
}

/// The outcome (repr of one call) in an answer of `once`.
fn outcome_of(answer: &serde_json::Value) -> Option<String> {
    answer.get("outcome")?.as_str().map(str::to_owned)
}

/// How to run `target` under the recorder, reporting into `out`.
fn spec(rec: &Recorder, target: &Target, out: &Path) -> RunSpec {
    let mut path: Vec<String> = std::iter::once(&rec.dir)
        .chain(target.python_path)
        .map(|p| p.display().to_string())
        .collect();
    let inherited = target
        .env
        .iter()
        .find(|(k, _)| k == "PYTHONPATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PYTHONPATH").ok())
        .filter(|v| !v.is_empty());
    path.extend(inherited);
    let include: Vec<String> = target
        .include
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut env: Vec<(String, String)> = target
        .env
        .iter()
        .filter(|(k, _)| k != "PYTHONPATH")
        .cloned()
        .collect();
    env.extend([
        ("PYTHONPATH".into(), path.join(":")),
        ("BENCHVM_SURVEY_OUT".into(), out.display().to_string()),
        ("BENCHVM_SURVEY_INCLUDE".into(), include.join(":")),
    ]);
    RunSpec {
        argv: target.argv.clone(),
        cwd: target.cwd.to_owned(),
        env,
        timeout: target.timeout,
        stdout: Some(out.join("stdout")),
        stderr: Some(out.join("stderr")),
        pad: 0,
        cpu: None,
        writable: target.writable.map(|w| {
            let mut w = w.to_vec();
            w.push(out.to_owned());
            w
        }),
    }
}

/// Merges the per-process reports in `dir`; a process that started but never reported
/// makes the benchmark untrusted.
fn merge(dir: &Path) -> Result<Raw> {
    let mut raw = Raw::default();
    let mut files: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let (mut opened, mut untrusted) = (BTreeSet::new(), BTreeSet::new());
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    let mut starts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "start"))
        .collect();
    starts.sort();
    for start in starts {
        let report = start.with_extension("json");
        let pid = start.file_stem().unwrap_or_default().to_string_lossy();
        let text = match side_file::read_text(&report, side_file::LARGE, Links::Refuse) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                untrusted.insert(format!(
                    "a Python process (pid {pid}) ended without reporting its coverage (os._exit, a signal or a forked child)"
                ));
                continue;
            }
            Err(e) => {
                untrusted.insert(format!("the coverage report of pid {pid} {e}"));
                continue;
            }
        };
        let part: Raw =
            serde_json::from_str(&text).map_err(|e| Error::caused("read a survey report", e))?;
        for (path, lines) in part.files {
            files.entry(path).or_default().extend(lines);
        }
        opened.extend(part.opened);
        untrusted.extend(part.untrusted);
        if raw.error.is_none() {
            raw.error = part.error;
        }
    }
    raw.files = files
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect();
    raw.opened = opened.into_iter().collect();
    raw.untrusted = untrusted.into_iter().collect();
    Ok(raw)
}

/// Maps the paths a survey saw to paths relative to the checkout.
#[derive(Debug, Clone)]
pub struct SourceMap {
    root: PathBuf,
    /// Directories in the checkout that are not the project's code: Python environments
    /// (a venv in `.venv/`) and benchvm's own `.benchvm/`.
    foreign: Vec<PathBuf>,
    /// Directories holding an installed copy of the project (site-packages/<package>).
    installed: Vec<PathBuf>,
    /// The checkout's files, relative.
    files: Vec<String>,
    /// Fingerprints by blob SHA1: a survey covers the same files benchmark after benchmark.
    fingerprints: std::sync::Arc<
        std::sync::Mutex<BTreeMap<String, std::sync::Arc<fingerprint::FileFingerprint>>>,
    >,
}

impl SourceMap {
    /// For a project used from its checkout (an editable install, or on `PYTHONPATH`).
    pub fn checkout(root: &Path) -> Self {
        Self::new(root, Vec::new(), Vec::new())
    }

    /// `installed`: the directories (or single-module files) of the installed project;
    /// `files`: the checkout's files, to find the source of an installed copy.
    pub fn new(root: &Path, installed: Vec<PathBuf>, files: Vec<String>) -> Self {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        let installed = installed
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
            .collect();
        let foreign = foreign_dirs(&root)
            .into_iter()
            .map(|d| root.join(d))
            .collect();
        Self {
            root,
            foreign,
            installed,
            files,
            fingerprints: Default::default(),
        }
    }

    /// The fingerprint of a file's content, parsed once per content.
    pub fn fingerprint(&self, bytes: &[u8]) -> std::sync::Arc<fingerprint::FileFingerprint> {
        let sha = fingerprint::blob_sha1(bytes);
        let cached = self
            .fingerprints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sha)
            .cloned();
        cached.unwrap_or_else(|| {
            let fp = std::sync::Arc::new(fingerprint::fingerprint(&String::from_utf8_lossy(bytes)));
            self.fingerprints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sha, fp.clone());
            fp
        })
    }

    /// The checkout-relative path of an absolute path the survey reported, if any: a file
    /// in the checkout, or an installed copy whose path (from its package on) a checkout
    /// file ends with (`site-packages/pkg/a.py` → `src/pkg/a.py`).
    pub fn to_source(&self, path: &str) -> Option<String> {
        let p = Path::new(path);
        if let Ok(rel) = p.strip_prefix(&self.root)
            && !self.foreign.iter().any(|d| p.starts_with(d))
        {
            return Some(rel.display().to_string());
        }
        for dir in &self.installed {
            let Some(parent) = dir.parent() else { continue };
            if !p.starts_with(dir) {
                continue;
            }
            let tail = p.strip_prefix(parent).ok()?.display().to_string();
            return self
                .files
                .iter()
                .filter(|f| *f == &tail || f.ends_with(&format!("/{tail}")))
                .min_by_key(|f| f.len())
                .cloned();
        }
        None
    }
}

/// The directories of `root` (relative, `/`-separated) that hold no code of the project:
/// `.benchvm/`, and Python environments, found by their `pyvenv.cfg` one or two levels
/// down (`.venv/`, `venv/`, `.tox/py311/`). Their files are neither dependencies nor changes.
pub fn foreign_dirs(root: &Path) -> Vec<String> {
    let mut out = vec![".benchvm".to_owned()];
    let dirs = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != ".git")
            .map(|e| e.path())
            .collect()
    };
    for top in dirs(root) {
        let nested = if top.join("pyvenv.cfg").is_file() {
            vec![top]
        } else {
            dirs(&top)
                .into_iter()
                .filter(|d| d.join("pyvenv.cfg").is_file())
                .collect()
        };
        for env in nested {
            if let Ok(rel) = env.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    out
}

/// The stored form of a raw survey: covered lines become the blocks that own them (a
/// covered file's module skeleton always counts: importing it ran it), paths relative to
/// the checkout. A covered installed file is fingerprinted as installed, under its
/// source's name: if the two differ, the blob SHA1 differs and the blocks are compared.
pub fn surveyed(benchmark: &str, raw: &Raw, map: &SourceMap) -> Surveyed {
    let mut untrusted = raw.untrusted.clone();
    if let Some(e) = &raw.error {
        untrusted.push(format!("its survey failed: {e}"));
    }
    if raw.files.is_empty() && raw.error.is_none() {
        untrusted.push("coverage recorded nothing".into());
    }
    let mut dependencies = Vec::new();
    for (path, lines) in &raw.files {
        let Some(rel) = map.to_source(path) else {
            continue;
        };
        let bytes = match side_file::read(Path::new(path), side_file::LARGE, Links::Refuse) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                untrusted.push(format!("{rel} vanished during the survey"));
                continue;
            }
            Err(e) => {
                untrusted.push(format!("{rel} {e}"));
                continue;
            }
        };
        let fp = map.fingerprint(&bytes);
        let mut blocks: Vec<&str> = lines.iter().map(|&l| fp.owner_of_line(l)).collect();
        blocks.push(if fp.block(fingerprint::SKELETON).is_some() {
            fingerprint::SKELETON
        } else {
            fingerprint::UNPARSED
        });
        blocks.sort_unstable();
        blocks.dedup();
        for block in blocks {
            if let Some(b) = fp.block(block) {
                dependencies.push(Dependency {
                    file: rel.clone(),
                    blob_sha1: fp.blob_sha1.clone(),
                    block: block.to_owned(),
                    checksum: b.checksum,
                });
            }
        }
    }
    let mut data_files: Vec<(String, Option<String>)> = raw
        .opened
        .iter()
        .filter_map(|p| {
            let rel = map.to_source(p)?;
            let sha = side_file::read(Path::new(p), side_file::LARGE, Links::Follow)
                .ok()
                .map(|b| fingerprint::blob_sha1(&b));
            Some((rel, sha))
        })
        .collect();
    data_files.sort();
    data_files.dedup();
    Surveyed {
        benchmark: benchmark.to_owned(),
        always_affected: (!untrusted.is_empty()).then(|| untrusted.join("; ")),
        dependencies,
        data_files,
        baseline: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write;

    /// A small real project: a package with a constants module, a decorator applied at
    /// import time in another module, and benchmarks that read a data file or start a thread.
    fn project(dir: &Path) {
        let w = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("pkg/__init__.py", "");
        w("pkg/consts.py", "LIMIT = 3\n");
        w(
            "pkg/deco.py",
            "def registered(f):\n    f.registered = True\n    return f\n",
        );
        w(
            "pkg/text.py",
            "from pkg.consts import LIMIT\nfrom pkg.deco import registered\n\n@registered\ndef first(words):\n    return words[:LIMIT]\n\ndef unused():\n    return 0\n",
        );
        w("data/words.txt", "a b c d e\n");
        w(
            "benchmarks/bench_text.py",
            "import os, threading\nfrom pkg.text import first\n\nHERE = os.path.dirname(__file__)\n\ndef time_first():\n    with open(os.path.join(HERE, '..', 'data', 'words.txt')) as f:\n        first(f.read().split())\n\ndef time_threaded():\n    t = threading.Thread(target=lambda: first([1, 2]))\n    t.start(); t.join()\n\ndef time_evaluated():\n    eval('1 + 1')\n\ndef time_broken():\n    raise ValueError('boom')\n",
        );
    }

    fn survey(dir: &Path, id: &str) -> Surveyed {
        let scratch = tempfile::tempdir().unwrap();
        let rec = Recorder::install(scratch.path()).unwrap();
        let argv = rec.asv_once("python3", &dir.join("benchmarks"), id);
        command(dir, &rec, argv, &SourceMap::checkout(dir))
    }

    fn command(dir: &Path, rec: &Recorder, argv: Vec<String>, map: &SourceMap) -> Surveyed {
        // Installed in a real survey's environment; here the source root is the path.
        let env = [("PYTHONPATH".to_owned(), dir.display().to_string())];
        let include = [dir.to_owned()];
        let raw = run(
            &crate::measure::runner::SystemRunner,
            rec,
            &Target {
                argv,
                cwd: dir,
                env: &env,
                include: &include,
                python_path: &[],
                timeout: Duration::from_secs(60),
                writable: None,
            },
        )
        .unwrap();
        surveyed("b", &raw, map)
    }

    fn blocks(s: &Surveyed) -> Vec<String> {
        let mut v: Vec<String> = s
            .dependencies
            .iter()
            .map(|d| format!("{}:{}", d.file, d.block))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_survey_records_covered_blocks_import_time_code_and_data_files() {
        let tmp = tempfile::tempdir().unwrap();
        project(tmp.path());
        let s = survey(tmp.path(), "bench_text.time_first");
        assert_eq!(s.always_affected, None, "{s:?}");
        let b = blocks(&s);
        for want in [
            "pkg/text.py:<module>",
            "pkg/text.py:first",
            "pkg/consts.py:<module>",
            "pkg/deco.py:registered",
            "benchmarks/bench_text.py:time_first",
        ] {
            assert!(b.contains(&want.to_owned()), "{want} in {b:?}");
        }
        assert!(!b.contains(&"pkg/text.py:unused".to_owned()), "{b:?}");
        assert_eq!(s.data_files.len(), 1, "{:?}", s.data_files);
        assert_eq!(s.data_files[0].0, "data/words.txt");
        assert_eq!(
            s.data_files[0].1.as_deref(),
            Some(fingerprint::blob_sha1(b"a b c d e\n").as_str())
        );
    }

    /// Code text in a file outside the checkout (and outside the machine's system
    /// directories): its directory, and the file.
    fn outside_plugin() -> (tempfile::TempDir, std::path::PathBuf) {
        let elsewhere = tempfile::tempdir().unwrap();
        let plugin = elsewhere.path().join("plugin.txt");
        std::fs::write(&plugin, "def f():\n    return 2\n").unwrap();
        (elsewhere, plugin)
    }

    #[test]
    fn threads_failures_and_text_from_outside_make_a_benchmark_always_affected() {
        let tmp = tempfile::tempdir().unwrap();
        project(tmp.path());
        let (_elsewhere, plugin) = outside_plugin();
        write(
            tmp.path(),
            "benchmarks/bench_outside.py",
            &format!(
                "import socket\n\ndef time_exec_outside():\n    g = {{}}\n    exec(open({:?}).read(), g)\n    g['f']()\n\ndef time_exec_after_network():\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    try:\n        s.connect(('127.0.0.1', 9))\n    except OSError:\n        pass\n    s.close()\n    eval('1 + 1')\n",
                plugin.display().to_string()
            ),
        );
        for (id, why) in [
            ("bench_text.time_threaded", "_thread"),
            ("bench_text.time_broken", "ValueError: boom"),
            (
                "bench_outside.time_exec_outside",
                "plugin.txt, outside the checkout",
            ),
            (
                "bench_outside.time_exec_after_network",
                "after using the network",
            ),
        ] {
            let s = survey(tmp.path(), id);
            let reason = s.always_affected.unwrap_or_default();
            assert!(reason.contains(why), "{id}: {reason:?}");
        }
    }

    /// The holes an independent review found in the attribution of compiled code, each
    /// closed: text taken from a docstring of code that never ran, a module read through a
    /// loader's get_source, a SQLite database of the checkout, text compiled under a real
    /// file name after a read outside the checkout, and text compiled after running a
    /// program the recorder does not follow.
    #[test]
    fn compiled_text_from_uncovered_constants_loaders_databases_and_programs_is_not_lost() {
        let tmp = tempfile::tempdir().unwrap();
        project(tmp.path());
        let (_elsewhere, plugin) = outside_plugin();
        write(
            tmp.path(),
            "pkg/holes.py",
            "import importlib.machinery, os, sqlite3, subprocess\n\nHERE = os.path.dirname(__file__)\n\ndef template():\n    \"\"\"def op(x):\n    return x * 3\n\"\"\"\n    raise NotImplementedError\n\ndef from_doc():\n    g = {}\n    exec(template.__doc__, g)\n    return g['op'](2)\n\ndef from_loader():\n    path = os.path.join(HERE, 'plug.py')\n    src = importlib.machinery.SourceFileLoader('plug', path).get_source('plug')\n    g = {}\n    exec(src, g)\n    return g['answer']()\n\ndef from_database():\n    db = sqlite3.connect(os.path.join(HERE, 'conf.db'))\n    (src,) = db.execute('SELECT src FROM code').fetchone()\n    g = {}\n    exec(src, g)\n    return g['answer']()\n\ndef named(path):\n    g = {}\n    exec(compile(open(path).read(), 'plugin', 'exec'), g)\n    return g['f']()\n\ndef after_a_program():\n    subprocess.run(['true'])\n    return eval('1 + 1')\n",
        );
        write(tmp.path(), "pkg/plug.py", "def answer():\n    return 7\n");
        let conn = rusqlite::Connection::open(tmp.path().join("pkg/conf.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE code (src TEXT); INSERT INTO code VALUES ('def answer():\n    return 9\n');",
        )
        .unwrap();
        drop(conn);
        write(
            tmp.path(),
            "benchmarks/bench_holes.py",
            &format!(
                "from pkg import holes\n\ndef time_doc():\n    return holes.from_doc()\n\ndef time_loader():\n    return holes.from_loader()\n\ndef time_database():\n    return holes.from_database()\n\ndef time_named():\n    return holes.named({:?})\n\ndef time_program():\n    return holes.after_a_program()\n",
                plugin.display().to_string()
            ),
        );
        let data =
            |s: &Surveyed| -> Vec<String> { s.data_files.iter().map(|(f, _)| f.clone()).collect() };
        let s = survey(tmp.path(), "bench_holes.time_doc");
        assert_eq!(s.always_affected, None, "{s:?}");
        assert!(data(&s).contains(&"pkg/holes.py".to_owned()), "{s:?}");
        let s = survey(tmp.path(), "bench_holes.time_loader");
        assert!(data(&s).contains(&"pkg/plug.py".to_owned()), "{s:?}");
        let s = survey(tmp.path(), "bench_holes.time_database");
        assert!(data(&s).contains(&"pkg/conf.db".to_owned()), "{s:?}");
        let s = survey(tmp.path(), "bench_holes.time_named");
        let why = s.always_affected.unwrap_or_default();
        assert!(why.contains("plugin.txt, outside the checkout"), "{why}");
        let s = survey(tmp.path(), "bench_holes.time_program");
        let why = s.always_affected.unwrap_or_default();
        assert!(why.contains("after running true"), "{why}");
    }

    /// `once-each` gives each benchmark what a fresh process would: a module whose import
    /// leaves state the children would share (a file kept open, a temporary directory its
    /// finalizer removes) is surveyed with fresh processes, and what processes started at
    /// import report counts for every benchmark of the module.
    #[test]
    fn a_module_at_a_time_matches_a_fresh_process_per_benchmark() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        project(dir);
        let w = |rel: &str, text: &str| std::fs::write(dir.join(rel), text).unwrap();
        w(
            "pkg/parse.py",
            "def parse(line):\n    return [int(x) for x in line.split()]\n",
        );
        w("pkg/rows.txt", "1 2 3\n");
        w("pkg/probe.py", "print('fast')\n");
        w(
            "benchmarks/bench_open.py",
            "import os\nfrom pkg.parse import parse\nROWS = open(os.path.join(os.path.dirname(__file__), '..', 'pkg', 'rows.txt'))\n\ndef time_sum():\n    return sum(sum(parse(l)) for l in ROWS)\n\ndef time_count():\n    return sum(len(parse(l)) for l in ROWS)\n",
        );
        w(
            "benchmarks/bench_scratch.py",
            "import os, tempfile\nSCRATCH = tempfile.TemporaryDirectory()\nwith open(os.path.join(SCRATCH.name, 'in.txt'), 'w') as f:\n    f.write('1 2 3')\n\ndef time_one():\n    return open(os.path.join(SCRATCH.name, 'in.txt')).read()\n\ndef time_two():\n    return open(os.path.join(SCRATCH.name, 'in.txt')).read()\n",
        );
        w(
            "benchmarks/bench_probe.py",
            "import subprocess, sys\nMODE = subprocess.check_output([sys.executable, '-m', 'pkg.probe'], text=True).strip()\n\ndef time_mode():\n    return MODE\n\ndef time_other():\n    return 1\n",
        );
        w(
            "benchmarks/bench_plain.py",
            "from pkg.text import first\nfrom pkg.parse import parse\n\ndef time_first():\n    return first([1, 2, 3, 4])\n\ndef time_parse():\n    return parse('4 5')\n",
        );
        let scratch = tempfile::tempdir().unwrap();
        let rec = Recorder::install(scratch.path()).unwrap();
        let env = [("PYTHONPATH".to_owned(), dir.display().to_string())];
        let include = [dir.to_owned()];
        let target = Target {
            argv: vec![],
            cwd: dir,
            env: &env,
            include: &include,
            python_path: &[],
            timeout: Duration::from_secs(60),
            writable: None,
        };
        let map = SourceMap::checkout(dir);
        let each = |module: &str, ids: &[&str]| -> Vec<(Surveyed, Raw)> {
            let ids: Vec<String> = ids.iter().map(|i| format!("{module}.{i}")).collect();
            let raws = run_each(
                &crate::measure::runner::SystemRunner,
                &rec,
                &target,
                "python3",
                &dir.join("benchmarks"),
                module,
                &ids,
            )
            .unwrap();
            ids.iter()
                .zip(raws)
                .map(|(id, raw)| (surveyed(id, &raw, &map), raw))
                .collect()
        };
        for (s, raw) in each("bench_open", &["time_sum", "time_count"]) {
            assert_eq!(s.always_affected, None, "{s:?}");
            assert!(
                blocks(&s).contains(&"pkg/parse.py:parse".to_owned()),
                "{s:?}"
            );
            assert_eq!(
                raw.outcome.as_deref(),
                Some(if s.benchmark.ends_with("sum") {
                    "6"
                } else {
                    "3"
                })
            );
        }
        for (s, raw) in each("bench_scratch", &["time_one", "time_two"]) {
            assert_eq!(s.always_affected, None, "{s:?}");
            assert_eq!(raw.outcome.as_deref(), Some("'1 2 3'"), "{s:?}");
        }
        for (s, _) in each("bench_probe", &["time_mode", "time_other"]) {
            assert!(
                blocks(&s).contains(&"pkg/probe.py:<module>".to_owned()),
                "{s:?}"
            );
        }
        // Nothing shared: forked, each with its own coverage.
        let plain = each("bench_plain", &["time_first", "time_parse"]);
        assert!(blocks(&plain[0].0).contains(&"pkg/text.py:first".to_owned()));
        assert!(!blocks(&plain[0].0).contains(&"pkg/parse.py:parse".to_owned()));
        assert!(blocks(&plain[1].0).contains(&"pkg/parse.py:parse".to_owned()));
        assert!(!blocks(&plain[1].0).contains(&"pkg/text.py:first".to_owned()));
        assert_eq!(plain[1].1.outcome.as_deref(), Some("[4, 5]"));
    }

    /// Code compiled from a string the process built from the checkout's own code is
    /// attributed to the code that built it (ARCHITECTURE §4): a constant in a function
    /// body, a template filled in from a decorated function's signature, a Python file of
    /// the checkout read as text (a data file then: any change to it selects).
    #[test]
    fn code_compiled_from_the_checkout_s_own_strings_is_attributed_to_its_source() {
        let tmp = tempfile::tempdir().unwrap();
        project(tmp.path());
        write(
            tmp.path(),
            "pkg/gen.py",
            "import ctypes, ctypes.util, inspect\n\ndef wrap(f):\n    args = ', '.join(inspect.signature(f).parameters)\n    src = 'def wrapper(%s):\\n    return f(%s)\\n' % (args, args)\n    g = {'f': f}\n    exec(compile(src, '<generated %s>' % f.__name__, 'exec'), g)\n    return g['wrapper']\n\n@wrap\ndef double(x):\n    return 2 * x\n\ndef plugin():\n    g = {}\n    with open(__file__.replace('gen.py', 'plugin_src.py')) as f:\n        exec(f.read(), g)\n    return g['answer']()\n\ndef native():\n    return ctypes.CDLL(ctypes.util.find_library('c')).abs(-3)\n",
        );
        write(
            tmp.path(),
            "pkg/plugin_src.py",
            "def answer():\n    return 42\n",
        );
        write(
            tmp.path(),
            "benchmarks/bench_gen.py",
            "from pkg.gen import double, plugin, native\n\ndef time_evaluated():\n    eval('1 + 1')\n\ndef time_generated():\n    double(3)\n\ndef time_plugin():\n    plugin()\n\ndef time_native():\n    native()\n",
        );
        let s = survey(tmp.path(), "bench_gen.time_evaluated");
        assert_eq!(s.always_affected, None, "{s:?}");
        assert!(blocks(&s).contains(&"benchmarks/bench_gen.py:time_evaluated".to_owned()));
        let s = survey(tmp.path(), "bench_gen.time_generated");
        assert_eq!(s.always_affected, None, "{s:?}");
        let b = blocks(&s);
        for want in ["pkg/gen.py:wrap", "pkg/gen.py:double"] {
            assert!(b.contains(&want.to_owned()), "{want} in {b:?}");
        }
        // Imported modules are not data files: only what is read as text.
        assert!(s.data_files.is_empty(), "{:?}", s.data_files);
        let s = survey(tmp.path(), "bench_gen.time_plugin");
        assert_eq!(s.always_affected, None, "{s:?}");
        let data: Vec<&str> = s.data_files.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(data, ["pkg/plugin_src.py"], "{s:?}");
        // A system library through ctypes is the environment's native code.
        let s = survey(tmp.path(), "bench_gen.time_native");
        assert_eq!(s.always_affected, None, "{s:?}");
    }

    #[test]
    fn a_command_is_surveyed_across_its_python_processes_from_an_installed_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("checkout");
        project(&dir);
        // A non-editable install: the package copied into a site-packages of its own.
        let site = tmp.path().join("site-packages");
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        for f in ["__init__.py", "consts.py", "deco.py", "text.py"] {
            std::fs::copy(dir.join("pkg").join(f), site.join("pkg").join(f)).unwrap();
        }
        let files = [
            "pkg/__init__.py",
            "pkg/consts.py",
            "pkg/deco.py",
            "pkg/text.py",
        ]
        .map(String::from)
        .to_vec();
        let map = SourceMap::new(&dir, vec![site.join("pkg")], files);
        let scratch = tempfile::tempdir().unwrap();
        let rec = Recorder::install(scratch.path()).unwrap();
        let env = [("PYTHONPATH".to_owned(), site.display().to_string())];
        let include = [dir.clone(), site.join("pkg")];
        let survey = |code: &str| {
            let raw = run(
                &crate::measure::runner::SystemRunner,
                &rec,
                &Target {
                    argv: vec!["python3".into(), "-c".into(), code.into()],
                    cwd: &dir,
                    env: &env,
                    include: &include,
                    python_path: &[],
                    timeout: Duration::from_secs(60),
                    writable: None,
                },
            )
            .unwrap();
            surveyed("cmd", &raw, &map)
        };
        // The parent imports nothing of the project: only its child does.
        let s = survey(
            "import subprocess, sys; subprocess.run([sys.executable, '-c', 'from pkg.text import first; first([1, 2])'], check=True)",
        );
        assert_eq!(s.always_affected, None, "{s:?}");
        let b = blocks(&s);
        for want in ["pkg/text.py:first", "pkg/consts.py:<module>"] {
            assert!(b.contains(&want.to_owned()), "{want} in {b:?}");
        }
        assert!(b.iter().all(|d| !d.contains("site-packages")), "{b:?}");
        // A child that never reports is not "covered nothing".
        let s = survey(
            "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import os, pkg.text; os._exit(0)'])",
        );
        let why = s.always_affected.unwrap_or_default();
        assert!(why.contains("without reporting its coverage"), "{why}");
        // A command that is not Python at all.
        let raw = run(
            &crate::measure::runner::SystemRunner,
            &rec,
            &Target {
                argv: vec!["true".into()],
                cwd: &dir,
                env: &env,
                include: &include,
                python_path: &[],
                timeout: Duration::from_secs(60),
                writable: None,
            },
        )
        .unwrap();
        let why = surveyed("true", &raw, &map)
            .always_affected
            .unwrap_or_default();
        assert!(why.contains("coverage recorded nothing"), "{why}");
    }

    #[test]
    fn dataclasses_and_namedtuples_do_not_count_as_exec() {
        let tmp = tempfile::tempdir().unwrap();
        project(tmp.path());
        let text = tmp.path().join("pkg/shapes.py");
        std::fs::write(
            &text,
            "import collections, dataclasses\n\n@dataclasses.dataclass\nclass P:\n    x: int = 0\n\nQ = collections.namedtuple('Q', 'a b')\n\ndef make():\n    return P(1), Q(1, 2)\n",
        )
        .unwrap();
        write(
            tmp.path(),
            "benchmarks/bench_shapes.py",
            "from pkg.shapes import make\n\ndef time_make():\n    make()\n",
        );
        let s = survey(tmp.path(), "bench_shapes.time_make");
        assert_eq!(s.always_affected, None, "{s:?}");
        assert!(blocks(&s).contains(&"pkg/shapes.py:make".to_owned()));
    }
}
