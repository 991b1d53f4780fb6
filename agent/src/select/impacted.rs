//! Which benchmarks a change can affect (ARCHITECTURE §4), as a pure function of the stored
//! survey and the changed files; every benchmark gets the reasons it runs or is skipped.
//!
//! A benchmark runs when: its coverage cannot be trusted (`always_affected`); a block
//! checksum it recorded is gone from a changed file; a file it used was deleted or
//! renamed; a data file it read changed; a new Python file appeared in a package it
//! imports (it may shadow or be picked up); the environment or a build file changed (then
//! everything runs). A file whose git blob SHA1 is the surveyed one is not looked into.

use std::collections::{BTreeMap, BTreeSet};

use super::fingerprint;
use super::store::Survey;

/// Files whose change means everything runs: they decide what gets installed.
pub const BUILD_FILES: [&str; 9] = [
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "bench.yml",
    "MANIFEST.in",
];

/// One changed path, relative to the source root, as git reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Added or modified, with its new content (None: not text).
    Changed {
        path: String,
        text: Option<String>,
    },
    Deleted {
        path: String,
    },
    Renamed {
        from: String,
        to: String,
    },
}

impl FileChange {
    pub fn paths(&self) -> Vec<&str> {
        match self {
            FileChange::Changed { path, .. } | FileChange::Deleted { path } => vec![path],
            FileChange::Renamed { from, to } => vec![from, to],
        }
    }
}

/// What to do about hot code: files covered by more than a fraction of the suite
/// (hotfiles), and in them blocks covered by more than that fraction (hot blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hotfiles {
    /// The local loop: a changed hot block selects nothing by itself; it is reported. A
    /// changed block of a hotfile that few benchmarks ran (one function's body, say)
    /// still selects them.
    Exclude,
    /// A PR comparison: a changed hotfile selects its benchmarks, and is reported.
    Include,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub environment_hash: String,
    /// A file covered by more than this fraction of the benchmarks is a hotfile.
    pub hotfile_threshold: f64,
    pub hotfiles: Hotfiles,
}

/// The decision for one benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub benchmark: String,
    pub run: bool,
    /// Why it runs, or why it is skipped; never empty.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub decisions: Vec<Decision>,
    /// Changed files that are hotfiles, with the fraction of the suite that covers them.
    pub changed_hotfiles: Vec<(String, f64)>,
    /// With [`Hotfiles::Exclude`]: the changed hot blocks left out (`` `block` of file ``)
    /// with the fraction of the suite that covers each.
    pub excluded_blocks: Vec<(String, f64)>,
}

impl Selection {
    pub fn selected(&self) -> impl Iterator<Item = &str> {
        self.decisions
            .iter()
            .filter(|d| d.run)
            .map(|d| d.benchmark.as_str())
    }
}

/// Decides, for every surveyed benchmark, whether `changes` can affect it.
pub fn select(survey: &Survey, changes: &[FileChange], opts: &Options) -> Selection {
    let mut reasons: BTreeMap<&str, Vec<String>> = survey
        .benchmarks
        .iter()
        .map(|b| (b.benchmark.as_str(), Vec::new()))
        .collect();
    let everything = |why: String| Selection {
        decisions: survey
            .benchmarks
            .iter()
            .map(|b| Decision {
                benchmark: b.benchmark.clone(),
                run: true,
                reasons: vec![why.clone()],
            })
            .collect(),
        changed_hotfiles: vec![],
        excluded_blocks: vec![],
    };
    if opts.environment_hash != survey.environment_hash {
        return everything(
            "the environment changed since the survey (interpreter, packages or lock files)".into(),
        );
    }
    if survey.normaliser_version != fingerprint::NORMALISER_VERSION {
        return everything("the survey's fingerprints are of another normaliser version".into());
    }
    for change in changes {
        for path in change.paths() {
            let name = path.rsplit('/').next().unwrap_or(path);
            if BUILD_FILES.contains(&name)
                || name.starts_with("requirements") && name.ends_with(".txt")
            {
                return everything(format!("build file {path} changed"));
            }
        }
    }

    // Who covers what: files, and blocks of files.
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut block_users: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for b in &survey.benchmarks {
        for d in &b.dependencies {
            users
                .entry(d.file.as_str())
                .or_default()
                .insert(b.benchmark.as_str());
            *block_users
                .entry((d.file.as_str(), d.block.as_str()))
                .or_default() += 1;
        }
    }
    let total = survey.benchmarks.len().max(1) as f64;
    let hot = |file: &str| {
        let share = users.get(file).map_or(0, |u| u.len()) as f64 / total;
        (share > opts.hotfile_threshold).then_some(share)
    };
    let hot_block = |file: &str, block: &str| {
        let share = block_users.get(&(file, block)).copied().unwrap_or(0) as f64 / total;
        (opts.hotfiles == Hotfiles::Exclude && share > opts.hotfile_threshold).then_some(share)
    };
    let mut changed_hotfiles = Vec::new();
    let mut excluded_blocks: Vec<(String, f64)> = Vec::new();
    // Per benchmark: the changed hot blocks it covers, left out in the local loop.
    let mut excluded_for: BTreeMap<&str, Vec<String>> = BTreeMap::new();

    for b in &survey.benchmarks {
        if let Some(why) = &b.always_affected {
            reasons
                .get_mut(b.benchmark.as_str())
                .expect("listed")
                .push(format!("its coverage cannot be trusted: {why}"));
        }
    }
    for change in changes {
        match change {
            FileChange::Deleted { path } => {
                for b in users.get(path.as_str()).into_iter().flatten() {
                    reasons
                        .get_mut(b)
                        .expect("listed")
                        .push(format!("{path}, which it uses, was deleted"));
                }
                data_file(survey, path, None, &mut reasons);
            }
            FileChange::Renamed { from, to } => {
                for b in users.get(from.as_str()).into_iter().flatten() {
                    reasons
                        .get_mut(b)
                        .expect("listed")
                        .push(format!("{from}, which it uses, was renamed to {to}"));
                }
                data_file(survey, from, None, &mut reasons);
                new_module(survey, to, &mut reasons);
            }
            FileChange::Changed { path, text } => {
                let sha = text
                    .as_deref()
                    .map(|t| fingerprint::blob_sha1(t.as_bytes()));
                data_file(survey, path, sha.as_deref(), &mut reasons);
                let Some(benchmarks) = users.get(path.as_str()) else {
                    new_module(survey, path, &mut reasons);
                    continue;
                };
                if let Some(share) = hot(path) {
                    changed_hotfiles.push((path.clone(), share));
                }
                let fresh = text.as_deref().map(fingerprint::fingerprint);
                for b in survey
                    .benchmarks
                    .iter()
                    .filter(|b| benchmarks.contains(b.benchmark.as_str()))
                {
                    let recorded: Vec<_> =
                        b.dependencies.iter().filter(|d| &d.file == path).collect();
                    if recorded.iter().all(|d| Some(&d.blob_sha1) == sha.as_ref()) {
                        continue;
                    }
                    let mut gone = Vec::new();
                    let changed_blocks = recorded
                        .iter()
                        .filter(|d| {
                            fresh
                                .as_ref()
                                .and_then(|f| f.block(&d.block))
                                .map(|blk| blk.checksum)
                                != Some(d.checksum)
                        })
                        .map(|d| d.block.as_str());
                    for block in changed_blocks {
                        let Some(share) = hot_block(path, block) else {
                            gone.push(block);
                            continue;
                        };
                        let name = format!("`{block}` of {path}");
                        if !excluded_blocks.iter().any(|(n, _)| *n == name) {
                            excluded_blocks.push((name.clone(), share));
                        }
                        excluded_for
                            .entry(b.benchmark.as_str())
                            .or_default()
                            .push(name);
                    }
                    if !gone.is_empty() {
                        reasons
                            .get_mut(b.benchmark.as_str())
                            .expect("listed")
                            .push(format!(
                                "{} of {path} changed",
                                gone.iter()
                                    .map(|g| format!("`{g}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                    }
                }
            }
        }
    }

    let decisions = survey
        .benchmarks
        .iter()
        .map(|b| {
            let why = reasons.remove(b.benchmark.as_str()).unwrap_or_default();
            if why.is_empty() {
                let skip = if let Some(hot) = excluded_for.get(b.benchmark.as_str()) {
                    format!(
                        "the only code it covers that changed is hot, left out of the local loop: {} (--hotfile-threshold 1 includes hot code)",
                        hot.join(", ")
                    )
                } else {
                    let files: BTreeSet<&str> =
                        b.dependencies.iter().map(|d| d.file.as_str()).collect();
                    let mut skip = format!(
                        "none of the {} block(s) it covers in {} file(s) changed",
                        b.dependencies.len(),
                        files.len()
                    );
                    if !b.data_files.is_empty() {
                        skip.push_str(&format!(
                            ", nor the {} data file(s) it reads",
                            b.data_files.len()
                        ));
                    }
                    skip
                };
                Decision {
                    benchmark: b.benchmark.clone(),
                    run: false,
                    reasons: vec![skip],
                }
            } else {
                Decision {
                    benchmark: b.benchmark.clone(),
                    run: true,
                    reasons: why,
                }
            }
        })
        .collect();
    Selection {
        decisions,
        changed_hotfiles,
        excluded_blocks,
    }
}

/// A data file some benchmark read changed (`sha` None: deleted or not text).
fn data_file(
    survey: &Survey,
    path: &str,
    sha: Option<&str>,
    reasons: &mut BTreeMap<&str, Vec<String>>,
) {
    for b in &survey.benchmarks {
        for (file, recorded) in &b.data_files {
            if file == path
                && recorded.as_deref() != sha
                && let Some(r) = reasons.get_mut(b.benchmark.as_str())
            {
                r.push(format!("data file {path}, which it reads, changed"));
            }
        }
    }
}

/// A Python file no benchmark covered appeared. In a package a benchmark imports, it may
/// shadow a module or be picked up, so those benchmarks run. On an import root (the
/// checkout's top, a `src/`, the directory the suite's modules are imported from) it can
/// shadow any top-level module, the standard library's included, so everything runs.
/// A package's `__init__.py` stands for the package (`pkg/sub/__init__.py` shadows
/// `pkg/sub.py`).
fn new_module(survey: &Survey, path: &str, reasons: &mut BTreeMap<&str, Vec<String>>) {
    if !path.ends_with(".py") {
        return;
    }
    let module = path.strip_suffix("/__init__.py").unwrap_or(path);
    let dir = parent(module);
    if import_roots(survey).contains(dir) {
        let place = if dir.is_empty() {
            "the checkout's top"
        } else {
            dir
        };
        for r in reasons.values_mut() {
            r.push(format!(
                "new module {path} on an import root ({place}) can shadow any import"
            ));
        }
        return;
    }
    for b in &survey.benchmarks {
        if b.dependencies.iter().any(|d| parent(&d.file) == dir) {
            reasons
                .get_mut(b.benchmark.as_str())
                .expect("listed")
                .push(format!("new module {path} sits in a package it imports"));
        }
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The directories modules were imported from: the checkout's top, and for every covered
/// file the first directory above it that is not a package (has no covered `__init__.py`).
fn import_roots(survey: &Survey) -> BTreeSet<&str> {
    let files: BTreeSet<&str> = survey
        .benchmarks
        .iter()
        .flat_map(|b| b.dependencies.iter().map(|d| d.file.as_str()))
        .collect();
    let mut roots = BTreeSet::from([""]);
    for f in &files {
        let mut dir = parent(f);
        while !dir.is_empty() && files.contains(format!("{dir}/__init__.py").as_str()) {
            dir = parent(dir);
        }
        roots.insert(dir);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::store::{Dependency, Surveyed};

    const STATS: &str = "import re\n\nWORD = re.compile(r'\\w+')\n\ndef count(text):\n    return len(WORD.findall(text))\n\ndef top(text):\n    return sorted(WORD.findall(text))[:3]\n";
    const UTIL: &str = "def clean(s):\n    return s.strip()\n";

    fn deps(file: &str, text: &str, blocks: &[&str]) -> Vec<Dependency> {
        let fp = fingerprint::fingerprint(text);
        blocks
            .iter()
            .map(|b| Dependency {
                file: file.into(),
                blob_sha1: fp.blob_sha1.clone(),
                block: (*b).into(),
                checksum: fp.block(b).unwrap().checksum,
            })
            .collect()
    }

    fn bench(name: &str, dependencies: Vec<Dependency>) -> Surveyed {
        Surveyed {
            benchmark: name.into(),
            always_affected: None,
            dependencies,
            data_files: vec![],
            baseline: None,
        }
    }

    /// count, top and clean each covered by their own benchmark; util also by `everyone`.
    fn survey() -> Survey {
        let util = deps("pkg/util.py", UTIL, &["<module>", "clean"]);
        let mut benchmarks = vec![
            bench(
                "micro/count",
                deps("pkg/stats.py", STATS, &["<module>", "count"]),
            ),
            bench(
                "micro/top",
                deps("pkg/stats.py", STATS, &["<module>", "top"]),
            ),
            bench("micro/clean", util.clone()),
            bench(
                "micro/other",
                deps("other/x.py", "def f():\n    return 1\n", &["<module>", "f"]),
            ),
        ];
        // Real surveys cover a package's __init__ and the suite's own module.
        for b in &mut benchmarks[..3] {
            b.dependencies
                .extend(deps("pkg/__init__.py", "", &["<module>"]));
        }
        benchmarks[3]
            .dependencies
            .extend(deps("benchmarks/bench_x.py", "X = 1\n", &["<module>"]));
        benchmarks[3].data_files.push((
            "data/corpus.txt".into(),
            Some(fingerprint::blob_sha1(b"words\n")),
        ));
        Survey {
            commit: "c0".into(),
            dirty: vec![],
            environment_hash: "env".into(),
            normaliser_version: fingerprint::NORMALISER_VERSION,
            benchmarks,
        }
    }

    fn opts() -> Options {
        Options {
            environment_hash: "env".into(),
            hotfile_threshold: 0.5,
            hotfiles: Hotfiles::Include,
        }
    }

    /// The selected benchmarks, sorted.
    fn run(changes: &[FileChange]) -> Vec<String> {
        let mut v: Vec<String> = select(&survey(), changes, &opts())
            .selected()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    fn changed(path: &str, text: &str) -> FileChange {
        FileChange::Changed {
            path: path.into(),
            text: Some(text.into()),
        }
    }

    #[test]
    fn a_function_edit_selects_only_its_benchmark_and_explains_both_ways() {
        let edited = STATS.replace("[:3]", "[:5]");
        let sel = select(&survey(), &[changed("pkg/stats.py", &edited)], &opts());
        let ran: Vec<&str> = sel.selected().collect();
        assert_eq!(ran, ["micro/top"]);
        let top = sel
            .decisions
            .iter()
            .find(|d| d.benchmark == "micro/top")
            .unwrap();
        assert_eq!(top.reasons, ["`top` of pkg/stats.py changed"]);
        let count = sel
            .decisions
            .iter()
            .find(|d| d.benchmark == "micro/count")
            .unwrap();
        assert!(
            count.reasons[0].starts_with("none of the 3 block(s) it covers in 2 file(s)"),
            "{:?}",
            count.reasons
        );
    }

    #[test]
    fn comments_select_nothing_and_an_unchanged_blob_is_not_read() {
        let edited = STATS.replace("def count(text):", "def count(text):  # how many");
        assert!(run(&[changed("pkg/stats.py", &edited)]).is_empty());
        assert!(run(&[changed("pkg/stats.py", STATS)]).is_empty());
    }

    #[test]
    fn a_module_level_change_selects_every_benchmark_that_imported_the_module() {
        let edited = STATS.replace(r"r'\w+'", r"r'\S+'");
        assert_eq!(
            run(&[changed("pkg/stats.py", &edited)]),
            ["micro/count", "micro/top"]
        );
    }

    #[test]
    fn deleted_renamed_and_data_files_select_their_users() {
        assert_eq!(
            run(&[FileChange::Deleted {
                path: "pkg/util.py".into()
            }]),
            ["micro/clean"]
        );
        assert_eq!(
            run(&[FileChange::Renamed {
                from: "pkg/util.py".into(),
                to: "pkg/helpers.py".into()
            }]),
            // The new name sits in pkg/, which the stats benchmarks import too.
            ["micro/clean", "micro/count", "micro/top"]
        );
        assert_eq!(
            run(&[changed("data/corpus.txt", "other words\n")]),
            ["micro/other"]
        );
        assert!(run(&[changed("data/corpus.txt", "words\n")]).is_empty());
    }

    #[test]
    fn a_new_module_selects_the_benchmarks_of_its_package() {
        assert_eq!(
            run(&[changed("pkg/re.py", "def compile(p):\n    return None\n")]),
            ["micro/clean", "micro/count", "micro/top"]
        );
        assert!(run(&[changed("docs/notes.md", "hello")]).is_empty());
        // A package of the same name as a module shadows it.
        assert_eq!(
            run(&[changed("pkg/stats/__init__.py", "")]),
            ["micro/clean", "micro/count", "micro/top"]
        );
        // Deeper, in a directory no benchmark imports from: nothing.
        assert!(run(&[changed("tools/gen/make.py", "")]).is_empty());
    }

    #[test]
    fn a_new_module_on_an_import_root_can_shadow_anything() {
        // `random.py` at the top shadows the standard library's for `python -c` and
        // the suite; so does a new module beside the suite's.
        for path in ["random.py", "benchmarks/json.py"] {
            assert_eq!(run(&[changed(path, "")]).len(), 4, "{path}");
        }
    }

    #[test]
    fn the_environment_and_build_files_select_everything() {
        let sel = select(
            &survey(),
            &[],
            &Options {
                environment_hash: "other".into(),
                ..opts()
            },
        );
        assert_eq!(sel.selected().count(), 4);
        assert_eq!(run(&[changed("pyproject.toml", "[project]\n")]).len(), 4);
        assert_eq!(run(&[changed("requirements-dev.txt", "x\n")]).len(), 4);
    }

    #[test]
    fn always_affected_benchmarks_always_run() {
        let mut s = survey();
        s.benchmarks[2].always_affected = Some("spawns threads (_thread)".into());
        let sel = select(&s, &[], &opts());
        let ran: Vec<&str> = sel.selected().collect();
        assert_eq!(ran, ["micro/clean"]);
        assert!(sel.decisions[2].reasons[0].contains("_thread"));
    }

    #[test]
    fn hot_blocks_are_excluded_in_the_local_loop_and_hotfiles_reported_in_both_modes() {
        // pkg/stats.py is covered by 2 of 4 benchmarks: a hotfile above a 0.4 threshold.
        // Its skeleton is covered by both (hot), `top`'s body by micro/top alone (not hot).
        let local = Options {
            hotfile_threshold: 0.4,
            hotfiles: Hotfiles::Exclude,
            ..opts()
        };
        let body = [changed("pkg/stats.py", &STATS.replace("[:3]", "[:5]"))];
        let sel = select(&survey(), &body, &local);
        assert_eq!(sel.selected().collect::<Vec<_>>(), ["micro/top"]);
        assert_eq!(sel.changed_hotfiles, [("pkg/stats.py".to_owned(), 0.5)]);
        assert!(sel.excluded_blocks.is_empty());

        let skeleton = STATS.replace(r"r'\w+'", r"r'\w{2,}'");
        assert_ne!(skeleton, STATS);
        let change = [changed("pkg/stats.py", &skeleton)];
        let sel = select(&survey(), &change, &local);
        assert_eq!(sel.selected().count(), 0);
        assert_eq!(
            sel.excluded_blocks,
            [("`<module>` of pkg/stats.py".to_owned(), 0.5)]
        );
        let top = sel
            .decisions
            .iter()
            .find(|d| d.benchmark == "micro/top")
            .unwrap();
        assert!(
            top.reasons[0].contains("hot, left out of the local loop: `<module>` of pkg/stats.py"),
            "{:?}",
            top.reasons
        );
        let pr = Options {
            hotfiles: Hotfiles::Include,
            ..local
        };
        let sel = select(&survey(), &change, &pr);
        assert_eq!(
            sel.selected().collect::<Vec<_>>(),
            ["micro/count", "micro/top"]
        );
        assert_eq!(sel.changed_hotfiles.len(), 1);
        assert!(sel.excluded_blocks.is_empty());
    }

    /// Issue 17: in a comparison a hotfile selects by block too. A changed function body
    /// selects the benchmarks that ran it, not every benchmark that covers the file; the
    /// hotfile is still named.
    #[test]
    fn in_a_comparison_a_changed_body_in_a_hotfile_selects_only_the_benchmarks_that_ran_it() {
        let pr = Options {
            hotfile_threshold: 0.4,
            ..opts()
        };
        let body = [changed("pkg/stats.py", &STATS.replace("[:3]", "[:5]"))];
        let sel = select(&survey(), &body, &pr);
        assert_eq!(sel.selected().collect::<Vec<_>>(), ["micro/top"]);
        assert_eq!(sel.changed_hotfiles, [("pkg/stats.py".to_owned(), 0.5)]);
        let count = sel
            .decisions
            .iter()
            .find(|d| d.benchmark == "micro/count")
            .unwrap();
        assert!(!count.run, "{count:?}");
        assert!(count.reasons[0].contains("none of the"), "{count:?}");
    }
}
