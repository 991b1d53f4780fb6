//! From pairs to verdicts (ARCHITECTURE §3): per benchmark the log ratios of its valid pairs,
//! the Hodges–Lehmann estimate with its 95 % CI, two one-sided signed-rank tests against
//! the minimum effect, then Benjamini–Hochberg over every p-value of the run.

use crate::bench::Benchmark;
use crate::config::Thresholds;
use crate::measure::scheduler::Sampled;
use crate::report::{Change, Comparison};
use crate::stats::{self, Alternative, Differences, Verdict};

/// The confidence level of the reported interval.
pub const CONFIDENCE: f64 = 0.95;

/// Compares every benchmark that was not dropped.
pub fn compare(
    benchmarks: &[Benchmark],
    sampled: &Sampled,
    thresholds: &Thresholds,
) -> Vec<Comparison> {
    let threshold = (1.0 + thresholds.min_effect_percent / 100.0).ln();
    let mut out: Vec<Comparison> = benchmarks
        .iter()
        .filter(|b| !sampled.dropped.iter().any(|d| d.benchmark == b.id))
        .map(|b| one(b, sampled, threshold))
        .collect();

    // BH over all p-values of the run, both directions of every benchmark.
    let mut p = Vec::new();
    for c in &out {
        if let (Some(r), Some(i)) = (c.p_regressed, c.p_improved) {
            p.extend([r, i]);
        }
    }
    let q = stats::benjamini_hochberg(&p);
    let mut q = q.chunks(2);
    for c in &mut out {
        if c.p_regressed.is_none() {
            continue;
        }
        let pair = q.next().expect("one q pair per tested benchmark");
        c.q_regressed = Some(pair[0]);
        c.q_improved = Some(pair[1]);
        let change = c.change.expect("tested benchmarks have a change");
        let lower = (change.ci_low_percent / 100.0).ln_1p();
        let upper = (change.ci_high_percent / 100.0).ln_1p();
        c.verdict = stats::verdict(lower, upper, pair[0], pair[1], threshold, thresholds.alpha);
    }
    out
}

fn one(bench: &Benchmark, sampled: &Sampled, threshold: f64) -> Comparison {
    let records: Vec<_> = sampled
        .pairs
        .iter()
        .filter(|p| p.benchmark == bench.id)
        .collect();
    let (base, head): (Vec<f64>, Vec<f64>) = records.iter().filter_map(|p| p.values()).unzip();
    let void = records.len() - base.len();
    let mut c = Comparison {
        benchmark: bench.id.clone(),
        layer: bench.layer,
        name: bench.name.clone(),
        unit: bench.unit.clone(),
        pairs: base.len() as u32,
        void_pairs: void as u32,
        base_median: (!base.is_empty()).then(|| stats::median(base.clone())),
        head_median: (!head.is_empty()).then(|| stats::median(head.clone())),
        change: None,
        p_regressed: None,
        p_improved: None,
        q_regressed: None,
        q_improved: None,
        verdict: Verdict::Inconclusive,
        note: None,
    };
    if base.is_empty() {
        c.note = Some("no valid pairs".into());
        return c;
    }
    let d = match Differences::from_pairs(&base, &head) {
        Ok(d) => d,
        Err(_) if base == head => {
            // Identical values (a deterministic track_* count, say), zero included.
            c.change = Some(Change {
                estimate_percent: 0.0,
                ci_low_percent: 0.0,
                ci_high_percent: 0.0,
                confidence: 1.0,
            });
            c.verdict = Verdict::NoChange;
            c.note = Some("identical values in every pair".into());
            return c;
        }
        Err(e) => {
            c.note = Some(format!("cannot compare as ratios: {e}"));
            return c;
        }
    };
    let hl = stats::hodges_lehmann(&d, CONFIDENCE);
    c.change = Some(Change {
        estimate_percent: stats::to_percent(hl.estimate),
        ci_low_percent: stats::to_percent(hl.lower),
        ci_high_percent: stats::to_percent(hl.upper),
        confidence: hl.confidence,
    });
    c.p_regressed = Some(stats::signed_rank_test(&d, threshold, Alternative::Greater).p_value);
    c.p_improved = Some(stats::signed_rank_test(&d, -threshold, Alternative::Less).p_value);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Layer, Measurement, Metric};
    use crate::measure::scheduler::{Dropped, Order, PairRecord, StopReason};

    fn m(value: f64) -> Measurement {
        Measurement {
            value,
            wall_s: value,
            user_s: 0.0,
            sys_s: 0.0,
            max_rss_bytes: 0,
        }
    }

    /// A benchmark name and its (base, head) value for a round.
    type Series<'a> = (&'a str, fn(u32) -> (f64, f64));

    fn sampled(series: &[Series<'_>], rounds: u32) -> Sampled {
        let mut pairs = Vec::new();
        for round in 0..rounds {
            for (name, f) in series {
                let (b, h) = f(round);
                pairs.push(PairRecord {
                    benchmark: format!("micro/{name}"),
                    round,
                    order: Order::BaseFirst,
                    base: Some(m(b)),
                    head: Some(m(h)),
                    error: None,
                });
            }
        }
        Sampled {
            seed: 1,
            rounds,
            stopped_by: StopReason::MaxRounds,
            pairs,
            dropped: vec![],
        }
    }

    fn bench(name: &str) -> Benchmark {
        Benchmark::new(Layer::Micro, name, Metric::Reported, "s", vec![])
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            min_effect_percent: 2.0,
            alpha: 0.05,
        }
    }

    /// Deterministic jitter of about ±0.5 %.
    fn jitter(round: u32) -> f64 {
        1.0 + (f64::from((round * 7919) % 11) - 5.0) / 1000.0
    }

    #[test]
    fn planted_changes_get_their_verdicts() {
        let s = sampled(
            &[
                ("slower", |r| (1.0 * jitter(r), 1.2 * jitter(r + 3))),
                ("faster", |r| (1.0 * jitter(r), 0.6 * jitter(r + 5))),
                ("same", |r| (1.0 * jitter(r), 1.0 * jitter(r + 1))),
                ("noisy", |r| (1.0, if r % 2 == 0 { 1.5 } else { 0.7 })),
            ],
            12,
        );
        let names = ["slower", "faster", "same", "noisy"];
        let benches: Vec<_> = names.iter().map(|n| bench(n)).collect();
        let out = compare(&benches, &s, &thresholds());
        let verdicts: Vec<_> = out.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Regressed,
                Verdict::Improved,
                Verdict::NoChange,
                Verdict::Inconclusive
            ]
        );
        let slower = out[0].change.unwrap();
        assert!((slower.estimate_percent - 20.0).abs() < 1.5, "{slower:?}");
        assert!(slower.ci_low_percent <= slower.estimate_percent);
        assert!(out[0].q_regressed.unwrap() >= out[0].p_regressed.unwrap());
    }

    #[test]
    fn void_pairs_are_counted_and_left_out() {
        let mut s = sampled(&[("a", |r| (1.0, 1.0 * jitter(r)))], 6);
        s.pairs[2].head = None;
        s.pairs[2].error = Some("head: exited with status 1".into());
        let out = compare(&[bench("a")], &s, &thresholds());
        assert_eq!((out[0].pairs, out[0].void_pairs), (5, 1));
    }

    #[test]
    fn identical_counts_are_no_change_and_dropped_benchmarks_are_skipped() {
        let mut s = sampled(&[("count", |_| (0.0, 0.0)), ("gone", |_| (1.0, 1.0))], 5);
        s.dropped.push(Dropped {
            benchmark: "micro/gone".into(),
            reason: "x".into(),
            skipped: false,
        });
        let out = compare(&[bench("count"), bench("gone")], &s, &thresholds());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict, Verdict::NoChange);
    }
}
