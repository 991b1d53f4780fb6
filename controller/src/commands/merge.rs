//! `benchvm merge` (and the Action's `merge` input): shard reports joined into one.

use std::path::{Path, PathBuf};

use benchvm_agent::report::{Report, render, results::write_atomic};

use crate::cli::MergeFlags;
use crate::commands::{exit_code, print_outcome};
use crate::error::{Error, Result};

pub fn merge(flags: &MergeFlags) -> Result<i32> {
    let results = flags
        .results
        .clone()
        .unwrap_or_else(|| benchvm_agent::job::default_results("merged"));
    let report = merge_reports(&flags.reports, &results)?;
    print_outcome(&report, &results, flags.markdown);
    Ok(exit_code(&report, flags.fail_on_regression))
}

/// Reads the shard reports (a directory stands for its report.json, or those of its
/// subdirectories, as `actions/download-artifact` lays them out), merges them and writes
/// the merged report.json and comment.md to `results`.
pub fn merge_reports(inputs: &[PathBuf], results: &Path) -> Result<Report> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let own = input.join("report.json");
            if own.is_file() {
                paths.push(own);
                continue;
            }
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::Usage(format!("{}: {e}", input.display())))?
                .filter_map(|e| e.ok().map(|e| e.path().join("report.json")))
                .filter(|p| p.is_file())
                .collect();
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no report.json in it or in its subdirectories",
                    input.display()
                )));
            }
            found.sort();
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    let reports = paths
        .iter()
        .map(|p| {
            let r = Report::read(p).map_err(|e| Error::Usage(format!("merge: {e}")))?;
            Ok((p.display().to_string(), r))
        })
        .collect::<Result<Vec<_>>>()?;
    let report = benchvm_agent::report::merge::merge(reports)
        .map_err(|e| Error::Usage(format!("merge: {e}")))?;
    std::fs::create_dir_all(results)
        .map_err(|e| Error::caused(format!("create {}", results.display()), e))?;
    let json = serde_json::to_string_pretty(&report).expect("serializable");
    write_atomic(&results.join("report.json"), &json)
        .map_err(|e| Error::caused("write report.json", e))?;
    write_atomic(&results.join("comment.md"), &render::markdown(&report))
        .map_err(|e| Error::caused("write the comment", e))?;
    eprintln!(
        "benchvm: merged {} report(s) into {}",
        paths.len(),
        results.display()
    );
    Ok(report)
}
