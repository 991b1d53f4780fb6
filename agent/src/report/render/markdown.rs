//! The markdown PR comment (comfy-table's markdown preset): sections, tables, the chart,
//! all within GitHub's comment limit.

use comfy_table::Table;
use comfy_table::presets::ASCII_MARKDOWN;

use super::units::{change, short, unsigned, value};
use crate::bench::Layer;
use crate::report::inert::{code, html, label};
use crate::report::{Comparison, Report};
use crate::stats::Verdict;

/// The hidden marker that identifies benchvm's sticky comment.
pub const MARKER: &str = "<!-- benchvm:comment -->";

/// How many import-breakdown rows the comment shows.
const IMPORT_ROWS: usize = 15;

/// GitHub's limit on a comment body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;

/// How many benchmarks the chart shows at most (the largest changes).
const CHART_BARS: usize = 40;

/// The PR comment, whole.
pub fn markdown(report: &Report) -> String {
    sections(report, false)
        .into_iter()
        .map(|s| s.text)
        .collect()
}

/// The PR comment within `limit` characters (UTF-16 code units, the stricter count):
/// detail sections go first (timings, machine, import time, chart), then table rows from
/// the end, each time with a note saying what was left out.
pub fn markdown_within(report: &Report, limit: usize) -> String {
    let mut parts = sections(report, false);
    let len = |parts: &[Section]| parts.iter().map(|s| utf16_len(&s.text)).sum::<usize>();
    let mut dropped: Vec<&'static str> = Vec::new();
    while len(&parts) + utf16_len(&shortened_note(&dropped)) > limit {
        let Some(i) = parts
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.drop_rank.map(|r| (r, i)))
            .max()
            .map(|(_, i)| i)
        else {
            break;
        };
        dropped.push(parts.remove(i).title);
    }
    let mut out: String = parts.iter().map(|s| s.text.as_str()).collect();
    let mut note = shortened_note(&dropped);
    if utf16_len(&out) + utf16_len(&note) > limit {
        // Still too long: the tables keep only what changed or failed, so a cut can never
        // hide a regression behind rows of unchanged benchmarks.
        let kept: String = sections(report, true)
            .into_iter()
            .filter(|s| s.drop_rank.is_none())
            .map(|s| s.text)
            .collect();
        let note_changed = format!(
            "> [!NOTE]\n> Shortened to fit GitHub's comment limit: the tables show only the benchmarks that changed or failed{}. The full report is in the job summary and in `report.json`.\n",
            if dropped.is_empty() {
                String::new()
            } else {
                format!("; left out {}", dropped.join(", "))
            }
        );
        out = kept;
        note = note_changed;
    }
    if utf16_len(&out) + utf16_len(&note) > limit {
        // Still too long: cut whole lines from the end of the tables.
        note = format!(
            "\n> [!WARNING]\n> Cut to fit GitHub's comment limit: the tables go on in the job summary and in `report.json`{}.\n",
            if dropped.is_empty() {
                String::new()
            } else {
                format!(" ({} left out as well)", dropped.join(", "))
            }
        );
        let budget = limit.saturating_sub(utf16_len(&note));
        let mut cut = String::new();
        for line in out.lines() {
            if utf16_len(&cut) + utf16_len(line) + 1 > budget {
                break;
            }
            cut.push_str(line);
            cut.push('\n');
        }
        out = cut;
    }
    out.push_str(&note);
    out
}

fn shortened_note(dropped: &[&str]) -> String {
    if dropped.is_empty() {
        return String::new();
    }
    format!(
        "> [!NOTE]\n> Shortened to fit GitHub's comment limit: left out {}. The full report is in the job summary and in `report.json`.\n",
        dropped.join(", ")
    )
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A part of the comment; detail sections may be left out to fit, highest rank first.
struct Section {
    title: &'static str,
    text: String,
    drop_rank: Option<u8>,
}

/// The comment's parts; `changed_only` leaves unchanged and inconclusive rows out of the
/// tables (saying how many).
fn sections(report: &Report, changed_only: bool) -> Vec<Section> {
    let body = |title, text| Section {
        title,
        text,
        drop_rank: None,
    };
    let detail = |title, text, rank| Section {
        title,
        text,
        drop_rank: Some(rank),
    };
    let mut head = String::new();
    head.push_str(MARKER);
    head.push('\n');
    let shard = report.shard.map_or(String::new(), |s| {
        format!(" (shard {s}: part of the benchmarks)")
    });
    head.push_str(&format!(
        "## benchvm: {} vs {}{shard}\n\n",
        code(&report.head.reference),
        code(&report.base.reference)
    ));
    head.push_str(&headline(report));
    head.push_str("\n\n");
    let mut out = vec![body("the headline", head)];
    out.push(body("the noise floors", noise_floors(report)));
    out.push(body("the selection", selection(report)));
    out.push(detail("the list of skipped benchmarks", skipped(report), 5));
    out.push(detail("the chart", chart(report), 1));
    for layer in Layer::ALL {
        out.push(body("a table", layer_table(report, layer, changed_only)));
    }
    out.push(detail("the import-time breakdown", importtime(report), 2));
    out.push(detail("the pipeline timings", timings(report), 4));
    out.push(detail("the machine details", machine(report), 3));
    out.retain(|s| !s.text.is_empty());
    out
}

fn layer_table(report: &Report, layer: Layer, changed_only: bool) -> String {
    let mut out = String::new();
    let all: Vec<&Comparison> = report.comparisons_in(layer).collect();
    let rows: Vec<&Comparison> = all
        .iter()
        .copied()
        .filter(|c| !changed_only || matches!(c.verdict, Verdict::Regressed | Verdict::Improved))
        .collect();
    let hidden = all.len() - rows.len();
    let dropped: Vec<_> = report
        .dropped
        .iter()
        .filter(|d| {
            report
                .benchmarks
                .iter()
                .any(|b| b.id == d.benchmark && b.layer == layer)
        })
        .collect();
    if rows.is_empty() && dropped.is_empty() {
        if hidden > 0 {
            out.push_str(&format!(
                "### {}\n\n{hidden} benchmark(s), none changed (left out to fit).\n\n",
                layer.title()
            ));
        }
        return out;
    }
    out.push_str(&format!("### {}\n\n", layer.title()));
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN);
    table.set_header(["Benchmark", "base", "head", "change (CI)", "verdict"]);
    for c in rows {
        table.add_row([
            code(&c.name),
            value(c.base_median, &c.unit),
            value(c.head_median, &c.unit),
            change(c),
            verdict_cell(c.verdict),
        ]);
    }
    for d in &dropped {
        let name = report
            .benchmarks
            .iter()
            .find(|b| b.id == d.benchmark)
            .map_or(d.benchmark.as_str(), |b| b.name.as_str());
        table.add_row([
            code(name),
            "–".into(),
            "–".into(),
            "–".into(),
            if d.skipped {
                "⏭️ skipped".into()
            } else {
                "❌ failed".into()
            },
        ]);
    }
    out.push_str(&table.to_string());
    out.push_str("\n\n");
    if hidden > 0 {
        out.push_str(&format!(
            "{hidden} unchanged or inconclusive benchmark(s) left out to fit.\n\n"
        ));
    }
    for d in &dropped {
        out.push_str(&format!(
            "- {} {}: {}\n",
            code(&d.benchmark),
            if d.skipped { "skipped" } else { "failed" },
            code(&d.reason)
        ));
    }
    let timed_out: Vec<String> = all.iter().filter_map(|c| timeouts(c)).collect();
    for line in &timed_out {
        out.push_str(&format!("- {line}\n"));
    }
    if !dropped.is_empty() || !timed_out.is_empty() {
        out.push('\n');
    }
    if layer == Layer::Integration {
        out.push_str(&quality(report));
    }
    out
}

/// What this host's calibration did to the run (crate::calibration): the A/A it ran, and the
/// benchmarks judged against their noise floor rather than δ.
pub(super) fn noise_floors(report: &Report) -> String {
    let delta = report.thresholds.min_effect_percent;
    let mut out = String::new();
    if let Some(run) = &report.calibration {
        if run.a_a_run {
            out.push_str(&format!(
                "🎚️ Calibration: this run is an A/A of {} against itself on this host; the noise \
                 floors of {} benchmark(s) are stored in the host cache, and later runs judge each \
                 benchmark against the larger of δ = {delta} % and its floor.\n",
                code(&report.base.reference),
                run.calibrated_now.len()
            ));
        } else {
            out.push_str(&format!(
                "🎚️ This host had no noise floor for {} benchmark(s): an A/A of the base ran \
                 first and stored them (once per host).\n",
                run.calibrated_now.len()
            ));
        }
        if run.a_a_run && !run.above_delta.is_empty() {
            out.push_str(&format!(
                "\n⚠️ Noisier here than δ = {delta} %: {}.\n",
                run.above_delta
                    .iter()
                    .map(|(id, floor)| format!("{} ({})", code(id), unsigned(*floor)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let raised: Vec<&Comparison> = report
        .comparisons
        .iter()
        .filter(|c| c.min_effect_percent.is_some())
        .collect();
    if !raised.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "⚠️ Too noisy on this host to detect δ = {delta} %: {} benchmark(s) are judged against \
             their A/A noise floor instead (the δ in their row), since a smaller change cannot be \
             told from noise here: {}. `benchvm calibrate` measures the floors again.\n",
            raised.len(),
            raised
                .iter()
                .map(|c| format!(
                    "{} ({})",
                    code(&c.name),
                    unsigned(c.min_effect_percent.unwrap_or(delta))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// A row's pairs in which one side ran out of time: they count as evidence, and say so.
fn timeouts(c: &Comparison) -> Option<String> {
    let t = c.timed_out?;
    let side = |n: u32, side: &str, other: &str| {
        (n > 0).then(|| format!("{side} timed out in {n} pair(s) where {other} finished"))
    };
    let parts: Vec<String> = [side(t.head, "head", "base"), side(t.base, "base", "head")]
        .into_iter()
        .flatten()
        .collect();
    Some(format!(
        "{}: {}; each counts as at least its time limit (a lower bound), not as a void pair",
        code(&c.name),
        parts.join(", ")
    ))
}

/// What a selective run measured, and the hotfiles it could not skip.
fn selection(report: &Report) -> String {
    let Some(sel) = &report.selection else {
        return String::new();
    };
    if let Some(why) = &sel.fallback {
        return format!(
            "**Selective run not possible**, so every benchmark ran: {}\n\n",
            code(why)
        );
    }
    let total = sel.ran as usize + sel.skipped.len();
    let mut out = format!(
        "**Selective run:** {} of {total} benchmark(s) ran; {} skipped because the change cannot affect them (their covered code and data did not change).\n",
        sel.ran,
        sel.skipped.len()
    );
    if !sel.hotfiles_changed.is_empty() {
        let files: Vec<String> = sel.hotfiles_changed.iter().map(|f| code(f)).collect();
        out.push_str(&format!(
            "Hotfiles changed (every benchmark that covers them ran): {}\n",
            files.join(", ")
        ));
    }
    out.push('\n');
    out
}

fn skipped(report: &Report) -> String {
    let Some(sel) = report.selection.as_ref().filter(|s| !s.skipped.is_empty()) else {
        return String::new();
    };
    let mut out = format!(
        "<details><summary>Skipped benchmarks ({})</summary>\n\n",
        sel.skipped.len()
    );
    for s in &sel.skipped {
        out.push_str(&format!("- {}: {}\n", code(&s.benchmark), code(&s.reason)));
    }
    out.push_str("\n</details>\n\n");
    if !sel.ran_because.is_empty() {
        out.push_str(&format!(
            "<details><summary>Why the others ran ({})</summary>\n\n",
            sel.ran_because.len()
        ));
        for s in &sel.ran_because {
            out.push_str(&format!("- {}: {}\n", code(&s.benchmark), code(&s.reason)));
        }
        out.push_str("\n</details>\n\n");
    }
    out
}

/// A mermaid chart of each benchmark's change with its interval (GitHub renders mermaid
/// blocks in comments and summaries). Lines, not bars: mermaid draws a bar from the axis
/// minimum, not from zero, which would show a −20 % change as a sliver. Read it per label:
/// the estimate, the interval's bounds and the zero line; the lines between labels only
/// join the points.
fn chart(report: &Report) -> String {
    let mut rows: Vec<(&Comparison, crate::report::Change)> = report
        .comparisons
        .iter()
        .filter_map(|c| c.change.map(|ch| (c, ch)))
        .collect();
    if rows.len() < 2 {
        return String::new();
    }
    let total = rows.len();
    if total > CHART_BARS {
        let mut by_size = rows.clone();
        by_size.sort_by(|a, b| {
            b.1.estimate_percent
                .abs()
                .total_cmp(&a.1.estimate_percent.abs())
        });
        let keep: Vec<&str> = by_size[..CHART_BARS]
            .iter()
            .map(|(c, _)| c.benchmark.as_str())
            .collect();
        rows.retain(|(c, _)| keep.contains(&c.benchmark.as_str()));
    }
    let num = |v: f64| format!("{v:.1}");
    let series = |f: fn(&crate::report::Change) -> f64| {
        rows.iter()
            .map(|(_, ch)| num(f(ch)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let low = rows
        .iter()
        .map(|(_, ch)| ch.ci_low_percent)
        .fold(0.0_f64, f64::min);
    let high = rows
        .iter()
        .map(|(_, ch)| ch.ci_high_percent)
        .fold(0.0_f64, f64::max);
    let pad = ((high - low) * 0.05).max(1.0);
    let labels = rows
        .iter()
        .map(|(c, _)| format!("\"{}\"", label(&c.benchmark)))
        .collect::<Vec<_>>()
        .join(", ");
    let shown = if total > CHART_BARS {
        format!("; the {CHART_BARS} largest of {total}")
    } else {
        String::new()
    };
    let zero = vec!["0"; rows.len()].join(", ");
    format!(
        "<details open><summary>Chart: change of head against base, % (at each benchmark: estimate, interval bounds as in the tables, and zero{shown})</summary>\n\n\
         ```mermaid\n\
         xychart-beta horizontal\n    \
         x-axis [{labels}]\n    \
         y-axis \"change %\" {} --> {}\n    \
         line [{}]\n    \
         line [{}]\n    \
         line [{}]\n    \
         line [{zero}]\n\
         ```\n\n</details>\n\n",
        num((low - pad).floor()),
        num((high + pad).ceil()),
        series(|c| c.estimate_percent),
        series(|c| c.ci_low_percent),
        series(|c| c.ci_high_percent),
    )
}

pub(super) fn headline(report: &Report) -> String {
    let s = &report.summary;
    if report.nothing_measured() {
        return format!(
            "❌ Failed: every benchmark failed ({} failed), so nothing was measured · base `{}` → head `{}`",
            s.failed,
            short(&report.base.commit),
            short(&report.head.commit),
        );
    }
    if let Some(sel) = report
        .selection
        .as_ref()
        .filter(|_| report.comparisons.is_empty())
    {
        return format!(
            "{} No change: the change cannot affect any benchmark ({} skipped, none measured) · base `{}` → head `{}`",
            verdict_icon(s.verdict),
            sel.skipped.len(),
            short(&report.base.commit),
            short(&report.head.commit),
        );
    }
    let mut parts = Vec::new();
    if s.regressed > 0 {
        parts.push(format!("**{} regressed**", s.regressed));
    }
    if s.improved > 0 {
        parts.push(format!("**{} improved**", s.improved));
    }
    parts.push(format!("{} no change", s.no_change));
    if s.inconclusive > 0 {
        parts.push(format!("{} inconclusive", s.inconclusive));
    }
    if s.failed > 0 {
        parts.push(format!("{} failed", s.failed));
    }
    let void: u32 = report.comparisons.iter().map(|c| c.void_pairs).sum();
    let void = if void > 0 {
        format!(", {void} void pair(s)")
    } else {
        String::new()
    };
    format!(
        "{} {}: {} · {} rounds{void} · base `{}` → head `{}` · δ = {} %",
        verdict_icon(s.verdict),
        verdict_phrase(s.verdict),
        parts.join(", "),
        report.sampling.rounds,
        short(&report.base.commit),
        short(&report.head.commit),
        report.thresholds.min_effect_percent
    )
}

fn verdict_phrase(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "Regression found",
        Verdict::Improved => "Faster, no regression",
        Verdict::NoChange => "No change",
        Verdict::Inconclusive => "Inconclusive",
    }
}

fn verdict_icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "🔴",
        Verdict::Improved => "🟢",
        Verdict::NoChange => "⚪",
        Verdict::Inconclusive => "🟡",
    }
}

fn verdict_cell(v: Verdict) -> String {
    format!("{} {}", verdict_icon(v), v.label())
}

fn quality(report: &Report) -> String {
    let mut out = String::new();
    for q in &report.quality {
        if let Some(e) = &q.error {
            out.push_str(&format!(
                "- output quality of {}: {}\n",
                code(&q.benchmark),
                code(e)
            ));
            continue;
        }
        let mut table = Table::new();
        table.load_preset(ASCII_MARKDOWN);
        table.set_header(["Output quality", "base", "head"]);
        let keys: Vec<&String> = {
            let mut k: Vec<_> = q.base.keys().chain(q.head.keys()).collect();
            k.sort();
            k.dedup();
            k
        };
        for k in keys {
            let cell = |m: &serde_json::Map<String, serde_json::Value>| {
                m.get(k).map_or("–".into(), |v| v.to_string())
            };
            table.add_row([code(k), cell(&q.base), cell(&q.head)]);
        }
        out.push_str(&format!(
            "Output quality of {}:\n\n{table}\n\n",
            code(&q.benchmark)
        ));
    }
    out
}

fn importtime(report: &Report) -> String {
    let Some(it) = &report.importtime else {
        return String::new();
    };
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN);
    table.set_header([
        "Module",
        "base self",
        "base cumulative",
        "head self",
        "head cumulative",
        "Δ cumulative",
    ]);
    let us = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0} µs"));
    for m in it.modules.iter().take(IMPORT_ROWS) {
        table.add_row([
            code(&m.module),
            us(m.base_self_us),
            us(m.base_cumulative_us),
            us(m.head_self_us),
            us(m.head_cumulative_us),
            format!("{:+.0} µs", m.cumulative_delta_us()),
        ]);
    }
    format!(
        "<details><summary>Per-module import time of <code>{}</code> (median of {} runs per side, top {})</summary>\n\n{table}\n\n</details>\n\n",
        html(&it.module),
        it.runs_per_side,
        IMPORT_ROWS.min(it.modules.len())
    )
}

fn timings(report: &Report) -> String {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN);
    table.set_header(["Phase", "duration", "cache"]);
    // Wall time from the first span's start to the last one's end: phases nest (`measure:
    // micro runs` lies inside `measure`), so their durations do not add up.
    let first = report
        .spans
        .iter()
        .map(|s| s.start_s)
        .fold(f64::INFINITY, f64::min);
    let last = report
        .spans
        .iter()
        .map(|s| s.start_s + s.duration_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let total = if first.is_finite() { last - first } else { 0.0 };
    for s in &report.spans {
        let cache = s.cache.map_or("–", |c| match c {
            crate::spans::Cache::Cold => "cold",
            crate::spans::Cache::Warm => "warm",
        });
        table.add_row([
            s.name.clone(),
            format!("{:.1} s", s.duration_s),
            cache.into(),
        ]);
    }
    format!(
        "<details><summary>Pipeline timings ({:.0} s in all)</summary>\n\n{table}\n\n</details>\n\n",
        total
    )
}

/// How the benchmarked code was confined (docs/untrusted-code.md).
fn isolation(m: &crate::machine::Machine) -> String {
    let namespace = if m.mount_namespace {
        "; in a mount namespace, its home and the agent's cache were read-only and its \
         `/dev/shm` its own"
    } else {
        "; **no mount namespace** (the kernel refused one): it could change the modes of \
         the agent's files and leave files in `/dev/shm`"
    };
    match m.landlock_abi {
        Some(abi) if abi >= 3 => format!(
            "Landlock ABI {abi}: each side's code wrote only its checkout, venv and TMPDIR{namespace}"
        ),
        Some(abi) => format!(
            "Landlock ABI {abi} (**partial**: truncating a file needs ABI 3, Linux 6.2): \
             each side's code wrote only its checkout, venv and TMPDIR{namespace}"
        ),
        None => format!(
            "**none**: no Landlock on this kernel, the benchmarked code could write \
             wherever the agent can{}",
            if m.mount_namespace {
                " but in its home and the agent's cache (a mount namespace kept them read-only)"
            } else {
                ""
            }
        ),
    }
}

fn machine(report: &Report) -> String {
    let m = &report.machine;
    let gib = m.memory_bytes.map_or("?".into(), |b| {
        format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))
    });
    let stop = match report.sampling.stopped_by {
        crate::measure::scheduler::StopReason::MaxRounds => "max rounds reached",
        crate::measure::scheduler::StopReason::TimeBudget => "time budget reached",
    };
    format!(
        "<details><summary>Machine and sampling</summary>\n\n\
         - machine: {} · {} cores · {} · kernel {} · governor {}\n\
         - python: {}\n\
         - isolation: {}\n\
         - sampling: {} rounds ({stop}), {} warm-up(s), randomized base/head pairs, seed `{}`\n\
         - decision: δ = {} %, Benjamini–Hochberg at α = {}, {} % Hodges–Lehmann intervals\n\n\
         </details>\n",
        m.cpu_model.as_deref().unwrap_or("unknown CPU"),
        m.cores,
        gib,
        m.kernel.as_deref().unwrap_or("?"),
        m.governor.as_deref().unwrap_or("not exposed"),
        code(report.python.as_deref().unwrap_or("?")),
        isolation(m),
        report.sampling.rounds,
        report.sampling.config.warmups,
        report.seed,
        report.thresholds.min_effect_percent,
        report.thresholds.alpha,
        (crate::report::analysis::CONFIDENCE * 100.0).round()
    )
}

#[cfg(test)]
mod tests {
    use super::isolation;
    use crate::machine::Machine;

    fn machine(landlock_abi: Option<u32>, mount_namespace: bool) -> Machine {
        Machine {
            hostname: "vm".into(),
            cpu_model: None,
            cores: 2,
            kernel: None,
            os: None,
            memory_bytes: None,
            governor: None,
            landlock_abi,
            mount_namespace,
        }
    }

    #[test]
    fn the_isolation_line_says_what_was_not_confined() {
        let full = isolation(&machine(Some(6), true));
        assert!(full.contains("read-only") && !full.contains("**"), "{full}");
        let no_namespace = isolation(&machine(Some(6), false));
        assert!(
            no_namespace.contains("**no mount namespace**") && no_namespace.contains("/dev/shm"),
            "{no_namespace}"
        );
        let old_kernel = isolation(&machine(Some(2), true));
        assert!(old_kernel.contains("**partial**"), "{old_kernel}");
        let none = isolation(&machine(None, false));
        assert!(none.starts_with("**none**"), "{none}");
    }
}
