//! The proof of safety for selective re-runs (issue 3): apply each edit of a catalogue to
//! the checkout, let the selection choose, run the *whole* suite anyway, and count the
//! benchmarks whose outcome or timing changed but were not selected (missed).
//!
//! The outcome of a benchmark is what one call returns (its `repr`) or the error it ends
//! with; its timing is the median of `repeat` fresh-process samples on the edited tree
//! against the same on the unedited tree just before the edit and just after it is
//! undone, changed when both ratios pass `timing_factor` the same way. Selection runs in
//! the comparison's mode (changed hotfiles select), against a survey in a database of its
//! own. The checkout is reset after every edit (`git reset --hard`, `git clean -fd`), so it
//! must start clean.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::impacted::{self, Hotfiles, Options};
use super::local_loop::{self, Project, git};
use super::survey::Recorder;
use crate::error::{Error, Result};
use crate::measure::runner::{SystemRunner, capture};

/// How long a catalogue's `run` step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// The catalogue file: `edits:`, each with a name, steps and optional undo steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub edits: Vec<Edit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    pub name: String,
    /// Written as `- replace: {…}`, `- run: "…"` (one-key maps, not YAML tags).
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    pub steps: Vec<Step>,
    /// Run after the full sweep, before the checkout is reset (an environment change
    /// is not undone by git).
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub undo: Vec<Step>,
}

/// One change to the checkout or its environment; paths relative to the checkout.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Replace the one occurrence of `old` in `file` with `new`.
    Replace {
        file: String,
        old: String,
        new: String,
    },
    /// Write `text` to `file` (created with its directories, or replaced).
    Write {
        file: String,
        text: String,
    },
    /// Rename a file as an editor would (not `git mv`).
    Rename {
        from: String,
        to: String,
    },
    Delete {
        file: String,
    },
    /// A shell command run in the checkout; `{python}` is the interpreter.
    Run(String),
}

/// What one edit did to the suite.
#[derive(Debug, Clone, Serialize)]
pub struct EditResult {
    pub name: String,
    pub total: usize,
    pub selected: Vec<String>,
    /// Benchmark → how its outcome or timing changed in the full sweep.
    pub affected: BTreeMap<String, String>,
    /// Affected but not selected.
    pub missed: Vec<String>,
}

/// Reads a catalogue; errors name the file and the key.
pub fn load(path: &Path) -> Result<Catalogue> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("--catalogue {}: {e}", path.display())))?;
    let c: Catalogue = serde_yaml::from_str(&text)
        .map_err(|e| Error::Usage(format!("--catalogue {}: {e}", path.display())))?;
    if c.edits.is_empty() {
        return Err(Error::Usage(format!(
            "--catalogue {}: `edits` is empty",
            path.display()
        )));
    }
    // Edits stay in the checkout: the reset after each edit undoes nothing outside it.
    for e in &c.edits {
        for step in e.steps.iter().chain(&e.undo) {
            let files = match step {
                Step::Replace { file, .. } | Step::Write { file, .. } | Step::Delete { file } => {
                    vec![file]
                }
                Step::Rename { from, to } => vec![from, to],
                Step::Run(_) => vec![],
            };
            if let Some(f) = files
                .into_iter()
                .find(|f| super::local_loop::normalised(Path::new(f)).is_none())
            {
                return Err(Error::Usage(format!(
                    "--catalogue {}: edit {:?}: {f} is not inside the checkout",
                    path.display(),
                    e.name
                )));
            }
        }
    }
    Ok(c)
}

/// Runs the catalogue against the checkout of `p` (its database is left alone).
pub fn validate(
    p: &Project,
    catalogue: &Catalogue,
    timing_factor: f64,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<EditResult>> {
    let dirty = git(&p.source_root, &["status", "--porcelain"])?;
    let dirty: Vec<&str> = dirty.lines().filter(|l| !l.contains(".benchvm/")).collect();
    if !dirty.is_empty() {
        return Err(Error::Usage(format!(
            "validate-selection edits {} and resets it after each edit: commit or stash its {} change(s) first",
            p.source_root.display(),
            dirty.len()
        )));
    }
    catalogue_applies(&p.source_root, catalogue)?;
    // Stopped by a signal midway, the run returns an error at the next process it runs,
    // and the edit's Reset puts the checkout back on the way out.
    crate::heartbeat::let_the_run_wind_down();
    run_catalogue(p, catalogue, timing_factor, progress)
}

/// Every edit's steps apply to the clean checkout, checked before anything runs: a
/// `replace` finds its text exactly once, a `rename` or `delete` finds its file (steps up to
/// a `run`, whose effect cannot be foreseen; `undo` steps are not checked).
fn catalogue_applies(root: &Path, catalogue: &Catalogue) -> Result<()> {
    for edit in &catalogue.edits {
        // The edit's files as its steps so far leave them: Some(text), or None if deleted.
        let mut files: BTreeMap<&str, Option<String>> = BTreeMap::new();
        let current = |files: &BTreeMap<&str, Option<String>>, f: &str| match files.get(f) {
            Some(text) => text.clone(),
            None => crate::side_file::read(
                &root.join(f),
                crate::side_file::LARGE,
                crate::side_file::Links::Follow,
            )
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        };
        for step in &edit.steps {
            let fail =
                |why: String| Error::Usage(format!("--catalogue: edit {:?}: {why}", edit.name));
            match step {
                Step::Replace { file, old, new } => {
                    let text = current(&files, file)
                        .ok_or_else(|| fail(format!("{file}: no such file")))?;
                    if text.matches(old.as_str()).count() != 1 {
                        return Err(fail(format!(
                            "{file} does not contain {old:?} exactly once"
                        )));
                    }
                    files.insert(file, Some(text.replacen(old.as_str(), new, 1)));
                }
                Step::Write { file, text } => {
                    files.insert(file, Some(text.clone()));
                }
                Step::Rename { from, to } => {
                    let text = current(&files, from)
                        .ok_or_else(|| fail(format!("{from}: no such file")))?;
                    files.insert(from, None);
                    files.insert(to, Some(text));
                }
                Step::Delete { file } => {
                    current(&files, file).ok_or_else(|| fail(format!("{file}: no such file")))?;
                    files.insert(file, None);
                }
                Step::Run(_) => break,
            }
        }
    }
    Ok(())
}

fn run_catalogue(
    p: &Project,
    catalogue: &Catalogue,
    timing_factor: f64,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<EditResult>> {
    let scratch = tempfile::tempdir().map_err(|e| Error::io("create", "a scratch dir", e))?;
    let mut p = p.clone();
    p.database = scratch.path().join("selection.sqlite");
    let rec = Recorder::install(scratch.path())?;
    progress("surveying the unedited checkout".into());
    let (survey, _) = local_loop::survey(&p, true, progress)?;
    let ids: Vec<String> = survey
        .benchmarks
        .iter()
        .map(|b| b.benchmark.clone())
        .collect();
    let before: BTreeMap<&str, String> = ids
        .iter()
        .map(|id| Ok((id.as_str(), outcome(&p, &rec, id)?)))
        .collect::<Result<_>>()?;

    let mut results = Vec::new();
    for (i, edit) in catalogue.edits.iter().enumerate() {
        progress(format!(
            "edit {}/{}: {}",
            i + 1,
            catalogue.edits.len(),
            edit.name
        ));
        // Timings of the unedited tree just before the edit, and again just after it is
        // undone: a timing counts as changed only against both, so a burst of load on
        // this machine during one sweep does not pass for an effect of the edit.
        let timed_ids: &[String] = if timing_factor > 0.0 { &ids } else { &[] };
        let unedited_before: BTreeMap<&str, f64> = timed_ids
            .iter()
            .zip(local_loop::time(
                &p,
                &rec.asv_harness,
                timed_ids,
                &mut |_| {},
            )?)
            .filter_map(|(id, t)| Some((id.as_str(), t.ok()?.0.median)))
            .collect();
        let reset = Reset(&p.source_root);
        for step in &edit.steps {
            apply(&p, step)
                .map_err(|e| Error::Usage(format!("--catalogue: edit {:?}: {e}", edit.name)))?;
        }
        let changes = local_loop::changes(&p, &survey, &[])?;
        let opts = Options {
            environment_hash: crate::python::environment_hash(&p.python, &p.source_root)?,
            hotfile_threshold: 0.5,
            hotfiles: Hotfiles::Include,
        };
        let selection = impacted::select(&survey, &changes, &opts);
        let selected: Vec<String> = selection.selected().map(str::to_owned).collect();
        let mut affected = BTreeMap::new();
        let mut same = Vec::new();
        for id in &ids {
            let now = outcome(&p, &rec, id)?;
            let was = &before[id.as_str()];
            if &now != was {
                affected.insert(id.clone(), format!("outcome {was} → {now}"));
            } else {
                same.push(id.as_str());
            }
        }
        let same: Vec<String> = if timing_factor > 0.0 {
            same.into_iter().map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        let after = local_loop::time(&p, &rec.asv_harness, &same, &mut |_| {})?;
        for step in &edit.undo {
            apply(&p, step)
                .map_err(|e| Error::Usage(format!("--catalogue: undo of {:?}: {e}", edit.name)))?;
        }
        drop(reset);
        let unedited = local_loop::time(&p, &rec.asv_harness, &same, &mut |_| {})?;
        for ((id, after), unedited) in same.iter().zip(after).zip(unedited) {
            let (Ok((after, _)), Ok((unedited, _))) = (after, unedited) else {
                continue;
            };
            let Some(&first) = unedited_before.get(id.as_str()) else {
                continue;
            };
            let ratios = [after.median / first, after.median / unedited.median];
            let slower = ratios.iter().all(|&r| r >= timing_factor);
            let faster = ratios.iter().all(|&r| r <= 1.0 / timing_factor);
            if slower || faster {
                let r = if slower {
                    ratios[0].min(ratios[1])
                } else {
                    ratios[0].max(ratios[1])
                };
                affected.insert(id.clone(), format!("timing ×{r:.2}"));
            }
        }
        let missed = affected
            .keys()
            .filter(|id| !selected.contains(id))
            .cloned()
            .collect();
        results.push(EditResult {
            name: edit.name.clone(),
            total: ids.len(),
            selected,
            affected,
            missed,
        });
    }
    Ok(results)
}

/// Puts the checkout back as committed, however the edit ends.
struct Reset<'a>(&'a Path);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        let _ = git(self.0, &["reset", "-q", "--hard"]);
        let _ = git(self.0, &["clean", "-qfd", "-e", ".benchvm"]);
    }
}

fn apply(p: &Project, step: &Step) -> std::result::Result<(), String> {
    let path = |rel: &str| p.source_root.join(rel);
    match step {
        Step::Replace { file, old, new } => {
            let text = crate::side_file::read_text(
                &path(file),
                crate::side_file::LARGE,
                crate::side_file::Links::Follow,
            )
            .map_err(|e| format!("{file}: {e}"))?;
            if text.matches(old.as_str()).count() != 1 {
                return Err(format!("{file} does not contain {old:?} exactly once"));
            }
            std::fs::write(path(file), text.replacen(old.as_str(), new, 1))
                .map_err(|e| format!("{file}: {e}"))
        }
        Step::Write { file, text } => {
            if let Some(dir) = path(file).parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{file}: {e}"))?;
            }
            std::fs::write(path(file), text).map_err(|e| format!("{file}: {e}"))
        }
        Step::Rename { from, to } => {
            std::fs::rename(path(from), path(to)).map_err(|e| format!("{from} → {to}: {e}"))
        }
        Step::Delete { file } => {
            std::fs::remove_file(path(file)).map_err(|e| format!("{file}: {e}"))
        }
        Step::Run(command) => {
            let command = command.replace("{python}", &p.python.display().to_string());
            let argv = vec!["sh".into(), "-c".into(), command.clone()];
            let out = capture(&SystemRunner, argv, &p.source_root, &[], STEP_TIMEOUT, None)
                .map_err(|e| format!("{command}: {e}"))?;
            match out.outcome.failure() {
                None => Ok(()),
                Some(failure) => {
                    let said = out.stderr.trim();
                    Err(format!(
                        "{command}: {}",
                        if said.is_empty() { &failure } else { said }
                    ))
                }
            }
        }
    }
}

/// One call's result, or how it failed.
fn outcome(p: &Project, rec: &Recorder, id: &str) -> Result<String> {
    let argv = rec.asv_once(&p.python.display().to_string(), &p.suite, id);
    let (run, stdout, stderr) = local_loop::run_captured(&argv, &p.source_root, &[])?;
    let last = |text: &str| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    if run.failure().is_some() {
        return Ok(format!("error: {}", last(&stderr)));
    }
    let json: serde_json::Value = serde_json::from_str(&last(&stdout))
        .map_err(|e| Error::caused(format!("read the outcome of {id}"), e))?;
    Ok(json["outcome"].as_str().unwrap_or("").to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_catalogue_reads_every_kind_of_step_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yml");
        std::fs::write(
            &path,
            "edits:\n  - name: all kinds\n    steps:\n      - replace: {file: a.py, old: x, new: y}\n      - write: {file: b.py, text: \"\"}\n      - rename: {from: b.py, to: c.py}\n      - delete: {file: c.py}\n      - run: \"{python} -c pass\"\n    undo:\n      - run: \"true\"\n",
        )
        .unwrap();
        let c = super::load(&path).unwrap();
        assert_eq!(c.edits[0].steps.len(), 5);
        assert_eq!(c.edits[0].undo.len(), 1);
        std::fs::write(&path, "edits:\n  - name: x\n    stepz: []\n").unwrap();
        let e = super::load(&path).unwrap_err().to_string();
        assert!(e.contains("stepz") && e.contains("c.yml"), "{e}");
        for outside in ["../x.py", "/tmp/x.py", "a/../../x.py", "."] {
            std::fs::write(
                &path,
                format!("edits:\n  - name: out\n    steps:\n      - write: {{file: {outside:?}, text: hi}}\n"),
            )
            .unwrap();
            let e = super::load(&path).unwrap_err().to_string();
            assert!(
                e.contains("not inside the checkout") && e.contains(outside),
                "{e}"
            );
        }
    }
}
