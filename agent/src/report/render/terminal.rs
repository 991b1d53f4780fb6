//! The terminal table, for people at a TTY.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};

use super::markdown::{headline, noise_floors};
use super::units::{change, value};
use crate::report::Report;
use crate::report::inert::line;

/// A terminal table for people at a TTY.
pub fn terminal(report: &Report) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "layer",
            "benchmark",
            "base",
            "head",
            "change (CI)",
            "verdict",
        ]);
    for c in &report.comparisons {
        table.add_row([
            Cell::new(c.layer.name()),
            Cell::new(line(&c.name)),
            Cell::new(value(c.base_median, &c.unit)),
            Cell::new(value(c.head_median, &c.unit)),
            Cell::new(change(c)),
            Cell::new(c.verdict.label()),
        ]);
    }
    for d in &report.dropped {
        table.add_row([
            Cell::new("–"),
            Cell::new(line(&d.benchmark)),
            Cell::new("–"),
            Cell::new("–"),
            Cell::new(line(&d.reason)),
            Cell::new(if d.skipped { "skipped" } else { "failed" }),
        ]);
    }
    format!(
        "benchvm: {} vs {}\n{}\n{}{table}\n",
        line(&report.head.reference),
        line(&report.base.reference),
        headline(report).replace("**", "").replace('`', ""),
        noise_floors(report).replace('`', "")
    )
}
