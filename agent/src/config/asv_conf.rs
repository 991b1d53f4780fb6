//! Zero configuration for asv users: a repository with an `asv.conf.json` and no
//! `bench.yml` is measured with its asv suite alone, at the conf's `benchmark_dir`.
//!
//! What asv's conf says about environments (`build_command`, `install_command`,
//! `pythons`, `matrix`) is not benchvm's to follow: each side is installed the way
//! benchvm installs (`uv pip install .`, or pip without uv), and where the conf asks for
//! something else, a note says it was not used.

use std::path::{Component, Path, PathBuf};

use super::{Config, ConfigError};
use crate::side_file::{self, Links};

/// Where asv keeps its conf: at the top, or one folder down (`benchmarks/` as numpy and
/// networkx have it, `asv_bench/` as pandas has it).
const FILE: &str = "asv.conf.json";

/// A configuration made from an `asv.conf.json`.
#[derive(Debug)]
pub struct FromAsv {
    pub config: Config,
    /// The conf file, relative to the checkout.
    pub file: PathBuf,
    /// What of the conf was not used, one sentence each.
    pub notes: Vec<String>,
}

/// The `asv.conf.json` of `checkout`: the top one, else the only one a folder down.
pub fn find(checkout: &Path) -> Option<PathBuf> {
    if checkout.join(FILE).is_file() {
        return Some(PathBuf::from(FILE));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(checkout)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| PathBuf::from(e.file_name()).join(FILE))
        .filter(|rel| checkout.join(rel).is_file())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Reads `checkout/rel` (an `asv.conf.json`); `origin` names it in messages.
pub fn read(checkout: &Path, rel: &Path, origin: &str) -> Result<FromAsv, ConfigError> {
    let path = checkout.join(rel);
    // The head's file: a link into its tree is followed, a link to a device is refused.
    let text = side_file::read_text(&path, side_file::SMALL, Links::Follow).map_err(|source| {
        ConfigError::Read {
            path: path.clone(),
            source,
        }
    })?;
    let conf = parse(&text, origin)?;
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        message,
    };
    let text_of = |key: &str| -> Result<Option<String>, ConfigError> {
        match conf.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(key, format!("expected a string, found {other}"))),
        }
    };
    let dir = rel.parent().unwrap_or(Path::new(""));
    let benchmark_dir = text_of("benchmark_dir")?.unwrap_or_else(|| "benchmarks".into());
    let suite = inside(&dir.join(&benchmark_dir)).ok_or_else(|| {
        invalid(
            "benchmark_dir",
            format!("{benchmark_dir:?} leads outside the repository"),
        )
    })?;
    let mut notes = Vec::new();
    if let Some(repo) = text_of("repo")? {
        // asv may name the repository by URL or path; benchvm measures the one it is given.
        if inside(&dir.join(&repo)).is_none_or(|p| p != Path::new("")) {
            notes.push(format!(
                "`repo` ({repo:?}) is not used: benchvm measures the repository it was given"
            ));
        }
    }
    let unused: Vec<&str> = ["build_command", "install_command", "uninstall_command"]
        .into_iter()
        .filter(|k| conf.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if !unused.is_empty() {
        notes.push(format!(
            "{} not used: each side is installed with `uv pip install .` (pip without uv); \
             a bench.yml with `install:` changes that",
            unused
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut config = Config::parse("micro:\n  asv: benchmarks\n", origin)?;
    config.micro.asv = Some(suite);
    Ok(FromAsv {
        config,
        file: rel.to_owned(),
        notes,
    })
}

/// asv's conf is JSON with `//` comment lines (its template is full of them).
fn parse(
    text: &str,
    origin: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
    let json: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&json).map_err(|e| ConfigError::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })
}

/// `path` with `.` and `..` resolved lexically, if it stays inside the repository.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn read_found(dir: &Path) -> Result<FromAsv, ConfigError> {
        let rel = find(dir).expect("an asv.conf.json");
        read(dir, &rel, "head:asv.conf.json")
    }

    #[test]
    fn a_conf_one_folder_down_points_at_its_suite_and_says_what_it_does_not_use() {
        // networkx's shape: benchmarks/asv.conf.json, repo "..", suite benchmarks/benchmarks.
        let dir = checkout(&[(
            "benchmarks/asv.conf.json",
            "{\n  // The version of the config file format.\n  \"version\": 1,\n  \"repo\": \"..\",\n  \"benchmark_dir\": \"benchmarks\",\n  \"build_command\": [\"python -m build\"]\n}\n",
        )]);
        let found = read_found(dir.path()).unwrap();
        assert_eq!(found.file, Path::new("benchmarks/asv.conf.json"));
        assert_eq!(
            found.config.micro.asv.as_deref(),
            Some(Path::new("benchmarks/benchmarks"))
        );
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(found.notes[0].starts_with("`build_command` not used"));
    }

    #[test]
    fn a_top_level_conf_defaults_to_benchmarks_and_a_foreign_repo_is_named() {
        let dir = checkout(&[
            (
                "asv.conf.json",
                "{\"repo\": \"https://example.invalid/x.git\"}",
            ),
            ("sub/asv.conf.json", "{}"),
        ]);
        let found = read_found(dir.path()).unwrap();
        assert_eq!(found.file, Path::new("asv.conf.json"));
        assert_eq!(
            found.config.micro.asv.as_deref(),
            Some(Path::new("benchmarks"))
        );
        assert!(found.notes[0].contains("`repo`"), "{:?}", found.notes);
    }

    #[test]
    fn a_benchmark_dir_outside_the_repository_or_bad_json_is_one_line_naming_it() {
        let dir = checkout(&[("asv.conf.json", "{\"benchmark_dir\": \"../elsewhere\"}")]);
        let e = read_found(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("head:asv.conf.json: benchmark_dir: "), "{e}");
        let dir = checkout(&[("asv.conf.json", "{\"benchmark_dir\": 3}")]);
        let e = read_found(dir.path()).unwrap_err().to_string();
        assert!(e.contains("benchmark_dir: expected a string"), "{e}");
        let dir = checkout(&[("asv.conf.json", "{ not json")]);
        let e = read_found(dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("head:asv.conf.json: ") && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn no_conf_is_none() {
        let dir = checkout(&[("README.md", "x")]);
        assert!(find(dir.path()).is_none());
    }
}
