//! Surveying one benchmark (DESIGN §4): run it once under coverage.py in a fresh process
//! (`survey_harness.py`), then turn its covered lines into block dependencies with
//! [`fingerprint`], the files it opened into data-file dependencies, and whatever makes its
//! coverage untrustworthy into `always_affected`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::fingerprint;
use super::store::{Dependency, Surveyed};
use crate::error::{Error, Result};

const HARNESS: &str = include_str!("survey_harness.py");

/// What the harness reports for one benchmark.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Raw {
    /// Absolute path → covered line numbers.
    pub files: BTreeMap<String, Vec<u32>>,
    pub opened: Vec<String>,
    pub untrusted: Vec<String>,
    pub error: Option<String>,
}

/// Writes the survey harness (and the ASV harness it uses) into `dir`.
pub fn install_harness(dir: &Path) -> Result<PathBuf> {
    crate::layers::asv::install_harness(dir)?;
    let path = dir.join("survey_harness.py");
    std::fs::write(&path, HARNESS).map_err(|e| Error::io("write", &path, e))?;
    Ok(path)
}

/// Runs benchmark `id` of `suite` once under coverage with `python` (and `env` added),
/// measuring the files under `source_root`.
pub fn run_one(
    python: &Path,
    harness: &Path,
    suite: &Path,
    id: &str,
    source_root: &Path,
    env: &[(String, String)],
) -> Result<Raw> {
    let out = harness.with_file_name(format!("survey-{}.json", std::process::id()));
    let status = Command::new(python)
        .arg(harness)
        .arg(suite)
        .arg(id)
        .arg(source_root)
        .arg(&out)
        .current_dir(source_root)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::infra(format!("run {}", python.display()), e.to_string()))?;
    let text = std::fs::read_to_string(&out).map_err(|e| {
        Error::infra(
            format!("survey {id}"),
            format!("the harness wrote no result ({status}): {e}"),
        )
    })?;
    let _ = std::fs::remove_file(&out);
    serde_json::from_str(&text)
        .map_err(|e| Error::infra(format!("read the survey of {id}"), e.to_string()))
}

/// The stored form of a raw survey: covered lines become the blocks that own them (a
/// covered file's module skeleton always counts: importing it ran it), paths relative to
/// `source_root`.
pub fn surveyed(benchmark: &str, raw: &Raw, source_root: &Path) -> Surveyed {
    let root = std::fs::canonicalize(source_root).unwrap_or_else(|_| source_root.to_owned());
    let rel = |p: &str| -> String {
        Path::new(p)
            .strip_prefix(&root)
            .map_or_else(|_| p.to_owned(), |r| r.display().to_string())
    };
    let mut untrusted = raw.untrusted.clone();
    if let Some(e) = &raw.error {
        untrusted.push(format!("its survey failed: {e}"));
    }
    if raw.files.is_empty() && raw.error.is_none() {
        untrusted.push("coverage recorded nothing".into());
    }
    let mut dependencies = Vec::new();
    for (path, lines) in &raw.files {
        let Ok(bytes) = std::fs::read(path) else {
            untrusted.push(format!("{} vanished during the survey", rel(path)));
            continue;
        };
        let fp = fingerprint::fingerprint(&String::from_utf8_lossy(&bytes));
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
                    file: rel(path),
                    blob_sha1: fp.blob_sha1.clone(),
                    block: block.to_owned(),
                    checksum: b.checksum,
                });
            }
        }
    }
    let data_files = raw
        .opened
        .iter()
        .map(|p| {
            let sha = std::fs::read(p).ok().map(|b| fingerprint::blob_sha1(&b));
            (rel(p), sha)
        })
        .collect();
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
        let harness = install_harness(&dir.join(".h")).unwrap();
        let raw = run_one(
            Path::new("python3"),
            &harness,
            &dir.join("benchmarks"),
            id,
            dir,
            // Installed in a real survey's environment; here the source root is the path.
            &[("PYTHONPATH".into(), dir.display().to_string())],
        )
        .unwrap();
        surveyed(id, &raw, dir)
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
        std::fs::create_dir_all(tmp.path().join(".h")).unwrap();
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

    #[test]
    fn threads_eval_and_failures_make_a_benchmark_always_affected() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".h")).unwrap();
        project(tmp.path());
        for (id, why) in [
            ("bench_text.time_threaded", "_thread"),
            ("bench_text.time_evaluated", "compiled from a string"),
            ("bench_text.time_broken", "ValueError: boom"),
        ] {
            let s = survey(tmp.path(), id);
            let reason = s.always_affected.unwrap_or_default();
            assert!(reason.contains(why), "{id}: {reason:?}");
        }
    }
}
