//! `benchvm timings`: where a run's minutes go.

use std::path::PathBuf;

use benchvm_agent::exit;
use benchvm_agent::report::Report;

use crate::error::Result;
use crate::timings;

pub fn timings(reports: &[PathBuf]) -> Result<i32> {
    let reports = reports
        .iter()
        .map(|p| Report::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let spans: Vec<&[benchvm_agent::spans::Span]> =
        reports.iter().map(|r| r.spans.as_slice()).collect();
    print!("{}", table(&timings::pareto(&spans)));
    Ok(exit::OK)
}

fn table(rows: &[timings::ParetoRow]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["phase", "median", "share", "cumulative", "cold/warm runs"]);
    for r in rows {
        table.add_row([
            r.name.clone(),
            format!("{:.1} s", r.median_s),
            format!("{:.0} %", r.share * 100.0),
            format!("{:.0} %", r.cumulative * 100.0),
            format!("{}/{}", r.cold, r.warm),
        ]);
    }
    format!("{table}\n")
}
