//! `python -X importtime` parsed into a per-module self/cumulative table, and the
//! base/head breakdown built from several runs of each side (medians per module).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One module's import cost in one run, microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub module: String,
    /// Nesting depth as printed (0 for a top-level import).
    pub depth: usize,
    pub self_us: u64,
    pub cumulative_us: u64,
}

/// Parses the stderr of `python -X importtime`; other lines (warnings, tracebacks) are
/// ignored.
pub fn parse(stderr: &str) -> Vec<ImportRow> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("import time:")?;
            let mut cols = rest.splitn(3, '|');
            let self_us = cols.next()?.trim().parse().ok()?;
            let cumulative_us = cols.next()?.trim().parse().ok()?;
            let name = cols.next()?;
            // The name column starts with one space; two more per nesting level.
            let name = name.strip_prefix(' ').unwrap_or(name);
            let depth = (name.len() - name.trim_start().len()) / 2;
            Some(ImportRow {
                module: name.trim().to_owned(),
                depth,
                self_us,
                cumulative_us,
            })
        })
        .collect()
}

/// One module of the base/head breakdown: medians over the runs of each side, `None`
/// where a side never imported the module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportBreakdown {
    pub module: String,
    pub base_self_us: Option<f64>,
    pub base_cumulative_us: Option<f64>,
    pub head_self_us: Option<f64>,
    pub head_cumulative_us: Option<f64>,
}

impl ImportBreakdown {
    /// Head minus base cumulative time, treating a missing side as zero.
    pub fn cumulative_delta_us(&self) -> f64 {
        self.head_cumulative_us.unwrap_or(0.0) - self.base_cumulative_us.unwrap_or(0.0)
    }
}

/// Combines parsed runs of both sides, sorted by the larger cumulative time, descending.
pub fn breakdown(
    base_runs: &[Vec<ImportRow>],
    head_runs: &[Vec<ImportRow>],
) -> Vec<ImportBreakdown> {
    let base = medians(base_runs);
    let head = medians(head_runs);
    let mut modules: Vec<&String> = base.keys().chain(head.keys()).collect();
    modules.sort();
    modules.dedup();
    let mut out: Vec<ImportBreakdown> = modules
        .into_iter()
        .map(|m| ImportBreakdown {
            module: m.clone(),
            base_self_us: base.get(m).map(|v| v.0),
            base_cumulative_us: base.get(m).map(|v| v.1),
            head_self_us: head.get(m).map(|v| v.0),
            head_cumulative_us: head.get(m).map(|v| v.1),
        })
        .collect();
    let key = |b: &ImportBreakdown| {
        b.base_cumulative_us
            .unwrap_or(0.0)
            .max(b.head_cumulative_us.unwrap_or(0.0))
    };
    out.sort_by(|a, b| {
        key(b)
            .total_cmp(&key(a))
            .then_with(|| a.module.cmp(&b.module))
    });
    out
}

fn medians(runs: &[Vec<ImportRow>]) -> BTreeMap<String, (f64, f64)> {
    let mut seen: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for run in runs {
        for row in run {
            let e = seen.entry(row.module.clone()).or_default();
            e.0.push(row.self_us as f64);
            e.1.push(row.cumulative_us as f64);
        }
    }
    seen.into_iter()
        .map(|(m, (s, c))| (m, (crate::stats::median(s), crate::stats::median(c))))
        .collect()
}

/// The tab-separated `importtime.tsv` of the results directory.
pub fn to_tsv(rows: &[ImportBreakdown]) -> String {
    let cell = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_default();
    let mut out = String::from(
        "module\tbase_self_us\tbase_cumulative_us\thead_self_us\thead_cumulative_us\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            r.module,
            cell(r.base_self_us),
            cell(r.base_cumulative_us),
            cell(r.head_self_us),
            cell(r.head_cumulative_us)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:        45 |         45 |     marshal
import time:       300 |        900 | textkit
import time:       600 |        600 |   textkit.tables
Traceback (most recent call last):
";

    #[test]
    fn parses_rows_and_nesting() {
        let rows = parse(SAMPLE);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[1],
            ImportRow {
                module: "marshal".into(),
                depth: 2,
                self_us: 45,
                cumulative_us: 45
            }
        );
        assert_eq!(rows[2].depth, 0);
        assert_eq!(rows[3].module, "textkit.tables");
    }

    #[test]
    fn real_python_output_parses() {
        let out = std::process::Command::new("python3")
            .args(["-X", "importtime", "-c", "import json"])
            .output()
            .unwrap();
        let rows = parse(&String::from_utf8_lossy(&out.stderr));
        let json = rows.iter().find(|r| r.module == "json").expect("json row");
        assert!(json.cumulative_us >= json.self_us);
        assert!(
            rows.iter()
                .any(|r| r.module == "json.decoder" && r.depth > 0)
        );
    }

    #[test]
    fn breakdown_takes_medians_and_sorts_by_cost() {
        let run = |a: u64, b: u64| {
            vec![
                ImportRow {
                    module: "a".into(),
                    depth: 0,
                    self_us: a,
                    cumulative_us: a,
                },
                ImportRow {
                    module: "b".into(),
                    depth: 0,
                    self_us: b,
                    cumulative_us: b,
                },
            ]
        };
        let base = [run(10, 100), run(30, 300), run(20, 200)];
        let head = [run(10, 50)];
        let rows = breakdown(&base, &head);
        assert_eq!(rows[0].module, "b");
        assert_eq!(rows[0].base_cumulative_us, Some(200.0));
        assert_eq!(rows[0].head_cumulative_us, Some(50.0));
        assert_eq!(rows[0].cumulative_delta_us(), -150.0);
        let tsv = to_tsv(&rows);
        assert!(tsv.starts_with("module\tbase_self_us"));
        assert!(tsv.contains("b\t200\t200\t50\t50\n"));
    }
}
