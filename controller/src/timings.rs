//! Where a run's minutes go: the Pareto table of `benchvm timings` over the spans of one
//! or more reports (the spans themselves are `benchvm_agent::spans`: the controller records
//! its own in the same `Timeline` type as the agent).

use benchvm_agent::spans::{Cache, Span};

/// Where a run's minutes go: spans grouped by name over one or more runs, median
/// duration per name, sorted longest first, with each one's share and the running total
/// (a Pareto table). Layer attributions (`measure: …`) are parts of `measure` and are
/// left out of the shares so nothing is counted twice.
pub fn pareto(runs: &[&[Span]]) -> Vec<ParetoRow> {
    use std::collections::BTreeMap;
    let mut by_name: BTreeMap<&str, (Vec<f64>, Vec<Option<Cache>>)> = BTreeMap::new();
    for spans in runs {
        for s in spans.iter().filter(|s| !s.name.starts_with("measure: ")) {
            let e = by_name.entry(&s.name).or_default();
            e.0.push(s.duration_s);
            e.1.push(s.cache);
        }
    }
    let mut rows: Vec<ParetoRow> = by_name
        .into_iter()
        .map(|(name, (mut d, caches))| {
            d.sort_by(f64::total_cmp);
            let median = if d.len() % 2 == 1 {
                d[d.len() / 2]
            } else {
                (d[d.len() / 2 - 1] + d[d.len() / 2]) / 2.0
            };
            let cold = caches.iter().filter(|c| **c == Some(Cache::Cold)).count();
            let warm = caches.iter().filter(|c| **c == Some(Cache::Warm)).count();
            ParetoRow {
                name: name.to_owned(),
                median_s: median,
                share: 0.0,
                cumulative: 0.0,
                cold,
                warm,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.median_s.total_cmp(&a.median_s));
    let total: f64 = rows.iter().map(|r| r.median_s).sum();
    let mut acc = 0.0;
    for r in &mut rows {
        r.share = if total > 0.0 { r.median_s / total } else { 0.0 };
        acc += r.share;
        r.cumulative = acc;
    }
    rows
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParetoRow {
    pub name: String,
    pub median_s: f64,
    pub share: f64,
    pub cumulative: f64,
    /// In how many of the reports this phase ran cold / warm.
    pub cold: usize,
    pub warm: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, secs: f64, cache: Option<Cache>) -> Span {
        Span {
            name: name.into(),
            start_s: 0.0,
            duration_s: secs,
            cache,
        }
    }

    #[test]
    fn pareto_takes_medians_sorts_and_leaves_layer_attributions_out() {
        let run = |install: f64, cache| {
            vec![
                span("checkout", 1.0, Some(Cache::Warm)),
                span("install base", install, Some(cache)),
                span("measure", 100.0, None),
                span("measure: micro runs", 60.0, None),
            ]
        };
        let runs = [
            run(10.0, Cache::Cold),
            run(2.0, Cache::Warm),
            run(4.0, Cache::Warm),
        ];
        let slices: Vec<&[Span]> = runs.iter().map(|r| r.as_slice()).collect();
        let rows = pareto(&slices);
        let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["measure", "install base", "checkout"]);
        assert_eq!(rows[1].median_s, 4.0);
        assert_eq!((rows[1].cold, rows[1].warm), (1, 2));
        assert!((rows[0].share - 100.0 / 105.0).abs() < 1e-12);
        assert!((rows[2].cumulative - 1.0).abs() < 1e-12);
    }
}
