//! The results directory (the seed's layout): `startup.json`, `importtime.tsv`,
//! `micro.json`, `integration.json`, `memory.json`, `summary.md`, and `report.json`,
//! written last. Every file is written beside its final name and renamed into place, so
//! a reader never sees half a file and a present `report.json` means a complete run.

use std::path::Path;

use serde::Serialize;

use crate::bench::{Layer, Measurement, Side};
use crate::error::{Error, Result};
use crate::layers::importtime;
use crate::report::{Comparison, Quality, Report, render};

#[derive(Serialize)]
struct LayerFile<'a> {
    layer: Layer,
    base: &'a super::Revision,
    head: &'a super::Revision,
    benchmarks: Vec<LayerEntry<'a>>,
}

#[derive(Serialize)]
struct LayerEntry<'a> {
    benchmark: &'a str,
    name: &'a str,
    unit: &'a str,
    base: Series,
    head: Series,
    comparison: Option<&'a Comparison>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<&'a Quality>,
}

/// One side's valid samples of a benchmark, with hyperfine-style summary fields.
#[derive(Serialize)]
struct Series {
    values: Vec<f64>,
    wall_s: Vec<f64>,
    user_s: Vec<f64>,
    sys_s: Vec<f64>,
    max_rss_bytes: Vec<u64>,
    mean: Option<f64>,
    stddev: Option<f64>,
    median: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
}

impl Series {
    fn of(samples: &[Measurement]) -> Self {
        let values: Vec<f64> = samples.iter().map(|m| m.value).collect();
        let n = values.len() as f64;
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / n);
        let stddev = mean.filter(|_| values.len() > 1).map(|mean| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        });
        Series {
            mean,
            stddev,
            median: (!values.is_empty()).then(|| crate::stats::median(values.clone())),
            min: values.iter().copied().reduce(f64::min),
            max: values.iter().copied().reduce(f64::max),
            wall_s: samples.iter().map(|m| m.wall_s).collect(),
            user_s: samples.iter().map(|m| m.user_s).collect(),
            sys_s: samples.iter().map(|m| m.sys_s).collect(),
            max_rss_bytes: samples.iter().map(|m| m.max_rss_bytes).collect(),
            values,
        }
    }
}

fn layer_file(report: &Report, layer: Layer) -> LayerFile<'_> {
    let benchmarks = report
        .benchmarks
        .iter()
        .filter(|b| b.layer == layer)
        .map(|b| {
            let valid: Vec<_> = report
                .samples
                .iter()
                .filter(|p| p.benchmark == b.id && p.values().is_some())
                .collect();
            let side = |s: Side| {
                Series::of(
                    &valid
                        .iter()
                        .filter_map(|p| if s == Side::Base { p.base } else { p.head })
                        .collect::<Vec<_>>(),
                )
            };
            LayerEntry {
                benchmark: &b.id,
                name: &b.name,
                unit: &b.unit,
                base: side(Side::Base),
                head: side(Side::Head),
                comparison: report.comparisons.iter().find(|c| c.benchmark == b.id),
                dropped: report
                    .dropped
                    .iter()
                    .find(|d| d.benchmark == b.id)
                    .map(|d| d.reason.as_str()),
                quality: report.quality.iter().find(|q| q.benchmark == b.id),
            }
        })
        .collect();
    LayerFile {
        layer,
        base: &report.base,
        head: &report.head,
        benchmarks,
    }
}

/// Writes the whole results directory for `report` into `dir`.
pub fn write(dir: &Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    for layer in Layer::ALL {
        let json = serde_json::to_string_pretty(&layer_file(report, layer)).expect("serializable");
        write_atomic(&dir.join(format!("{}.json", layer.name())), &json)?;
    }
    let tsv = report
        .importtime
        .as_ref()
        .map(|it| importtime::to_tsv(&it.modules))
        .unwrap_or_else(|| importtime::to_tsv(&[]));
    write_atomic(&dir.join("importtime.tsv"), &tsv)?;
    write_atomic(&dir.join("summary.md"), &render::markdown(report))?;
    let json = serde_json::to_string_pretty(report).expect("serializable");
    write_atomic(&dir.join("report.json"), &json)
}

/// Writes `text` to a temporary sibling and renames it over `path`.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().expect("a file path").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, text).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))
}
