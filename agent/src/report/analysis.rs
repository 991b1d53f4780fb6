//! From pairs to verdicts (ARCHITECTURE §3): per benchmark the log ratios of its valid pairs,
//! two one-sided signed-rank tests against the minimum effect, made valid over the planned
//! looks of adaptive sampling (weighted Bonferroni: p/w, w the share of α of the look the
//! benchmark's data ended at), Benjamini–Hochberg over every
//! p-value of the run, and the Hodges–Lehmann estimate with the interval its verdict used.

use std::collections::BTreeMap;

use crate::bench::{Benchmark, Side};
use crate::calibration::Floors;
use crate::config::Thresholds;
use crate::measure::scheduler::Sampled;
use crate::report::{Change, Comparison, TimedOut};
use crate::stats::{self, Alternative, Differences, Verdict};

/// The confidence level of the equivalence ("no change") interval with a single look.
pub const CONFIDENCE: f64 = 0.95;

/// Compares every benchmark that was not dropped.
///
/// Each p-value is p/w, w the share of α of the look the benchmark's data ended at (a
/// benchmark may stop at any look, so its last look's p is valid only after that
/// correction), and the rows' intervals agree with their
/// verdicts: with R of the m p-values rejected at the false discovery rate α,
/// * a regressed or improved row shows the interval at the level its test passed,
///   1 − 2·R·α·w/m (Benjamini–Yekutieli's FCR-adjusted interval): it excludes ±δ;
/// * a "no change" row shows the equivalence interval, 1 − α·w, which lies inside ±δ;
/// * an inconclusive row shows the wider of that and the interval at the level the next
///   flag would have needed, 1 − 2·(R+1)·α·w/m: it neither lies inside ±δ nor beyond it.
///
/// A benchmark whose calibrated noise floor on this host is above the configured δ is
/// judged against its floor (its row records the δ it got).
pub fn compare(
    benchmarks: &[Benchmark],
    sampled: &Sampled,
    thresholds: &Thresholds,
    floors: &Floors,
) -> Vec<Comparison> {
    let delta = |id: &str| {
        floors
            .get(id)
            .copied()
            .filter(|&floor| floor > thresholds.min_effect_percent)
    };
    let log_delta =
        |id: &str| (1.0 + delta(id).unwrap_or(thresholds.min_effect_percent) / 100.0).ln();
    let alpha = thresholds.alpha;
    let mut out: Vec<(Comparison, Option<Differences>, f64)> = benchmarks
        .iter()
        .filter(|b| !sampled.dropped.iter().any(|d| d.benchmark == b.id))
        .map(|b| {
            let share = share_of(b, sampled);
            let (mut c, d) = one(b, sampled, log_delta(&b.id), share);
            c.min_effect_percent = delta(&b.id);
            (c, d, share)
        })
        .collect();

    // BH over all p-values of the run, both directions of every benchmark.
    let mut p = Vec::new();
    for (c, _, _) in &out {
        if let (Some(r), Some(i)) = (c.p_regressed, c.p_improved) {
            p.extend([r, i]);
        }
    }
    let q = stats::benjamini_hochberg(&p);
    let m = p.len() as f64;
    let rejected = q.iter().filter(|&&q| q <= alpha).count() as f64;
    let mut q = q.chunks(2);
    for (c, d, share) in &mut out {
        let Some(d) = d else { continue };
        let threshold = log_delta(&c.benchmark);
        let pair = q.next().expect("one q pair per tested benchmark");
        c.q_regressed = Some(pair[0]);
        c.q_improved = Some(pair[1]);
        let interval = |per_side: f64| {
            let level = 1.0 - 2.0 * per_side * *share;
            (stats::hodges_lehmann(d, level), level)
        };
        let (hl, verdict) = if pair[0] <= alpha {
            (interval(rejected * alpha / m).0, Verdict::Regressed)
        } else if pair[1] <= alpha {
            (interval(rejected * alpha / m).0, Verdict::Improved)
        } else {
            let (eq, wanted) = interval(alpha / 2.0);
            let reached = eq.confidence >= wanted - 1e-9;
            if reached && -threshold < eq.lower && eq.upper < threshold {
                (eq, Verdict::NoChange)
            } else {
                let next = ((rejected + 1.0) * alpha / m).min(alpha / 2.0);
                let (wide, wanted) = interval(next);
                if wide.confidence < wanted - 1e-9 {
                    c.note = Some(format!(
                        "too few pairs for the {:.2} % interval a verdict needs",
                        wanted * 100.0
                    ));
                }
                (wide, Verdict::Inconclusive)
            }
        };
        let (lower, upper) = (hl.lower, hl.upper);
        let beyond = lower > threshold || upper < -threshold;
        c.verdict = match verdict {
            // With tied values the test (mid-ranks, tie-corrected variance) and the interval
            // (order statistics of Walsh averages) can disagree at the margin; a flag then
            // needs both, and the row says why it has none.
            Verdict::Regressed | Verdict::Improved if !beyond && tied(d, threshold) => {
                c.note = Some(
                    "tied values: its test flags it but its interval does not exclude ±δ".into(),
                );
                Verdict::Inconclusive
            }
            Verdict::Inconclusive if beyond && tied(d, threshold) => {
                c.note = Some("tied values: its interval is approximate".into());
                Verdict::Inconclusive
            }
            verdict => verdict,
        };
        c.change = Some(change_of(&hl));
    }
    out.into_iter().map(|(c, _, _)| c).collect()
}

/// The share of α the analysis of `bench` may spend: that of the look its data ended at.
fn share_of(bench: &Benchmark, sampled: &Sampled) -> f64 {
    if let Some(share) = sampled.shares.as_ref().and_then(|s| s.get(&bench.id)) {
        return *share;
    }
    sampled.alpha_share(sampled.last_round(&bench.id))
}

/// Whether the differences have ties or zeros where the tests or the interval rank them.
fn tied(d: &Differences, threshold: f64) -> bool {
    let values = d.as_slice();
    [0.0, threshold, -threshold].iter().any(|&mu| {
        let mut shifted: Vec<f64> = values.iter().map(|v| (v - mu).abs()).collect();
        shifted.sort_by(f64::total_cmp);
        shifted.contains(&0.0) || shifted.windows(2).any(|w| w[0] == w[1])
    })
}

/// The benchmarks whose verdict more rounds cannot change, at a look of adaptive sampling:
/// "no change" (its equivalence interval is its own, whatever the others do), and a flag
/// whose p-value passes even Bonferroni's α/m, where m counts both tests of every benchmark
/// of the suite, other shards' included (Benjamini–Hochberg then rejects it at the end
/// whatever the other benchmarks' p-values become, and whichever shards join the merge).
pub fn settled(comparisons: &[Comparison], alpha: f64, m: usize) -> Vec<String> {
    let tested = 2 * comparisons
        .iter()
        .filter(|c| c.p_regressed.is_some())
        .count();
    let m = m.max(tested) as f64;
    comparisons
        .iter()
        .filter(|c| match c.verdict {
            Verdict::NoChange => true,
            Verdict::Regressed => c.p_regressed.is_some_and(|p| p * m <= alpha),
            Verdict::Improved => c.p_improved.is_some_and(|p| p * m <= alpha),
            Verdict::Inconclusive => false,
        })
        .map(|c| c.benchmark.clone())
        .collect()
}

/// An A/A comparison's noise floor per benchmark, with its valid pairs: the largest |bound|
/// of its equivalence interval (1 − α·w, the one a "no change" verdict uses) in percent,
/// rounded up to 0.1 %; `None` when there were too few pairs for that level. Identical
/// values in every pair have no floor above 0.
pub fn floors(
    benchmarks: &[Benchmark],
    sampled: &Sampled,
    alpha: f64,
) -> BTreeMap<String, (Option<f64>, u32)> {
    benchmarks
        .iter()
        .filter(|b| !sampled.dropped.iter().any(|d| d.benchmark == b.id))
        .map(|b| {
            let wanted = 1.0 - alpha * share_of(b, sampled);
            let (base, head): (Vec<f64>, Vec<f64>) = sampled
                .pairs
                .iter()
                .filter(|p| p.benchmark == b.id)
                .filter_map(|p| p.values())
                .unzip();
            let floor = match Differences::from_pairs(&base, &head) {
                _ if base.is_empty() => None,
                Ok(d) => {
                    let hl = stats::hodges_lehmann(&d, wanted);
                    (hl.confidence >= wanted - 1e-9).then(|| {
                        let widest = stats::to_percent(hl.lower)
                            .abs()
                            .max(stats::to_percent(hl.upper).abs());
                        (widest * 10.0).ceil() / 10.0
                    })
                }
                Err(_) if base == head => Some(0.0),
                Err(_) => None,
            };
            (b.id.clone(), (floor, base.len() as u32))
        })
        .collect()
}

fn change_of(hl: &stats::ShiftEstimate) -> Change {
    Change {
        estimate_percent: stats::to_percent(hl.estimate),
        ci_low_percent: stats::to_percent(hl.lower),
        ci_high_percent: stats::to_percent(hl.upper),
        confidence: hl.confidence,
    }
}

fn one(
    bench: &Benchmark,
    sampled: &Sampled,
    threshold: f64,
    share: f64,
) -> (Comparison, Option<Differences>) {
    let records: Vec<_> = sampled
        .pairs
        .iter()
        .filter(|p| p.benchmark == bench.id)
        .collect();
    let (base, head): (Vec<f64>, Vec<f64>) = records.iter().filter_map(|p| p.values()).unzip();
    let void = records.len() - base.len();
    let mut timed_out = TimedOut::default();
    for c in records.iter().filter_map(|p| p.censored) {
        match c.side {
            Side::Base => timed_out.base += 1,
            Side::Head => timed_out.head += 1,
        }
    }
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
        min_effect_percent: None,
        timed_out: (timed_out != TimedOut::default()).then_some(timed_out),
    };
    if base.is_empty() {
        c.note = Some("no valid pairs".into());
        return (c, None);
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
            return (c, None);
        }
        Err(e) => {
            c.note = Some(format!("cannot compare as ratios: {e}"));
            return (c, None);
        }
    };
    let p =
        |mu, alternative| (stats::signed_rank_test(&d, mu, alternative).p_value / share).min(1.0);
    c.p_regressed = Some(p(threshold, Alternative::Greater));
    c.p_improved = Some(p(-threshold, Alternative::Less));
    c.change = Some(change_of(&stats::hodges_lehmann(&d, CONFIDENCE)));
    (c, Some(d))
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
                    censored: None,
                });
            }
        }
        Sampled {
            seed: 1,
            rounds,
            looks: 1,
            plan: vec![],
            stopped_by: StopReason::MaxRounds,
            pairs,
            dropped: vec![],
            shares: None,
        }
    }

    fn bench(name: &str) -> Benchmark {
        Benchmark::new(Layer::Micro, name, Metric::Reported, "s", vec![])
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            min_effect_percent: 2.0,
            alpha: 0.05,
            calibration: crate::config::CalibrationMode::Auto,
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
        let out = compare(&benches, &s, &thresholds(), &Floors::new());
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
        let out = compare(&[bench("a")], &s, &thresholds(), &Floors::new());
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
        let out = compare(
            &[bench("count"), bench("gone")],
            &s,
            &thresholds(),
            &Floors::new(),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict, Verdict::NoChange);
    }

    /// A floor above δ judges the benchmark against the floor (and the row says so); one
    /// below δ changes nothing.
    #[test]
    fn a_calibrated_floor_above_delta_replaces_it_and_one_below_does_not() {
        let s = sampled(
            &[
                ("biased", |r| (1.0 * jitter(r), 1.05 * jitter(r + 3))),
                ("quiet", |r| (1.0 * jitter(r), 1.05 * jitter(r + 3))),
            ],
            12,
        );
        let benches = [bench("biased"), bench("quiet")];
        let plain = compare(&benches, &s, &thresholds(), &Floors::new());
        assert_eq!(plain[0].verdict, Verdict::Regressed);
        let floors = Floors::from([
            ("micro/biased".to_owned(), 8.0),
            ("micro/quiet".to_owned(), 1.5),
        ]);
        let out = compare(&benches, &s, &thresholds(), &floors);
        assert_eq!(out[0].verdict, Verdict::NoChange, "{:?}", out[0]);
        assert_eq!(out[0].min_effect_percent, Some(8.0));
        assert_eq!(out[1].verdict, Verdict::Regressed);
        assert_eq!(out[1].min_effect_percent, None);
    }

    /// An A/A's floor is the farther bound of its equivalence interval: about the bias plus
    /// the noise for a biased benchmark, 0 for identical values, none without enough pairs.
    #[test]
    fn an_a_a_floor_bounds_its_equivalence_interval() {
        let s = sampled(
            &[
                ("biased", |r| (1.0 * jitter(r), 1.06 * jitter(r + 3))),
                ("same", |r| (1.0 * jitter(r), 1.0 * jitter(r + 3))),
                ("count", |_| (7.0, 7.0)),
            ],
            12,
        );
        let benches = [bench("biased"), bench("same"), bench("count")];
        let measured = floors(&benches, &s, 0.05);
        let (biased, pairs) = measured["micro/biased"];
        let biased = biased.unwrap();
        assert_eq!(pairs, 12);
        assert!((6.0..8.0).contains(&biased), "{biased}");
        let same = measured["micro/same"].0.unwrap();
        assert!(same > 0.0 && same < 2.0, "{same}");
        assert_eq!(measured["micro/count"].0, Some(0.0));
        let few = floors(
            &benches[..1],
            &sampled(&[("biased", |_| (1.0, 1.1))], 2),
            0.05,
        );
        assert_eq!(few["micro/biased"], (None, 2));
    }

    /// Every row's interval says what its verdict says: a flag's interval excludes ±δ on
    /// its side, "no change" lies inside ±δ, an inconclusive one does neither (the issue
    /// found "regressed" rows whose interval reached below δ, and the reverse).
    #[test]
    fn each_interval_agrees_with_its_verdict() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // On the log scale, where the tests work: ±ln(1.02) is +2 % and −1.96 %.
        let t = 1.02f64.ln();
        let mut seen = std::collections::HashSet::new();
        let mut tied_rows = 0;
        for trial in 0..200 {
            let n = rng.random_range(1..=30);
            let rounds = rng.random_range(3..=70);
            let mut pairs = Vec::new();
            let effects: Vec<f64> = (0..n)
                .map(|_| [0.0, 0.01, 0.02, 0.03, 0.08, -0.05][rng.random_range(0..6)])
                .collect();
            let noise = [0.002, 0.01, 0.04][trial % 3];
            // Every fourth trial: coarse integer values, full of ties (a timer's resolution).
            let coarse = trial % 4 == 3;
            let quantize = |v: f64| if coarse { (v * 50.0).round() } else { v };
            for round in 0..rounds {
                for (i, e) in effects.iter().enumerate() {
                    let mut draw = || 1.0 + noise * (rng.random::<f64>() - 0.5) * 3.4;
                    pairs.push(PairRecord {
                        benchmark: format!("micro/b{i}"),
                        round,
                        order: Order::BaseFirst,
                        base: Some(m(quantize(draw()))),
                        head: Some(m(quantize((1.0 + e) * draw()))),
                        error: None,
                        censored: None,
                    });
                }
            }
            let looks = 1 + trial as u32 % 5;
            // Every other trial with a plan: unequal shares of α, the last look's the largest.
            let plan = if trial % 2 == 0 {
                vec![]
            } else {
                (1..=looks).map(|k| (rounds * k).div_ceil(looks)).collect()
            };
            let s = planned(rounds, looks, plan, pairs);
            let names: Vec<_> = (0..n).map(|i| bench(&format!("b{i}"))).collect();
            for c in compare(&names, &s, &thresholds(), &Floors::new()) {
                let tied = c.note.as_deref().is_some_and(|n| n.starts_with("tied"));
                assert!(!tied || coarse, "trial {trial}: {c:?}");
                assert!(agrees(&c, t), "trial {trial}: {c:?}");
                seen.insert(c.verdict);
                tied_rows += usize::from(tied);
            }
        }
        assert_eq!(seen.len(), 4, "all four verdicts occurred: {seen:?}");
        assert!(
            tied_rows > 0,
            "the coarse trials reach the tied-values rule"
        );
    }

    /// Pairs sampled over `rounds` rounds with `looks` planned looks after the rounds `plan`.
    fn planned(rounds: u32, looks: u32, plan: Vec<u32>, pairs: Vec<PairRecord>) -> Sampled {
        Sampled {
            seed: 1,
            rounds,
            looks,
            plan,
            stopped_by: StopReason::MaxRounds,
            pairs,
            dropped: vec![],
            shares: None,
        }
    }

    /// Whether a row's interval agrees with its verdict against ±t (log scale): a flag's
    /// interval excludes ±t on its side, a "no change" lies inside, an inconclusive one
    /// neither (or says it had too few pairs); rows with tied values are approximate.
    fn agrees(c: &Comparison, t: f64) -> bool {
        let ch = c.change.as_ref().unwrap();
        let low = (ch.ci_low_percent / 100.0).ln_1p();
        let high = (ch.ci_high_percent / 100.0).ln_1p();
        let note = c.note.as_deref().unwrap_or("");
        note.starts_with("tied")
            || match c.verdict {
                Verdict::Regressed => low > t,
                Verdict::Improved => high < -t,
                Verdict::NoChange => -t < low && high < t,
                Verdict::Inconclusive => {
                    note.contains("too few") || (low <= t && high >= -t && !(-t < low && high < t))
                }
            }
    }

    /// each_interval_agrees_with_its_verdict, but the benchmarks stop at different looks
    /// (so they carry different shares w), as in a real adaptive run.
    #[test]
    fn intervals_agree_with_verdicts_when_benchmarks_stop_at_different_looks() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let t = 1.02f64.ln();
        let mut seen = std::collections::HashSet::new();
        let mut shares = std::collections::BTreeSet::new();
        let mut rows = 0;
        for trial in 0..300 {
            let n = rng.random_range(1..=30);
            let plan: Vec<u32> = vec![8, 12, 18, 27, 40];
            let effects: Vec<f64> = (0..n)
                .map(|_| [0.0, 0.01, 0.02, 0.03, 0.08, -0.05][rng.random_range(0..6)])
                .collect();
            let stops: Vec<u32> = (0..n).map(|_| plan[rng.random_range(0..5)]).collect();
            let noise = [0.002, 0.01, 0.04][trial % 3];
            let mut pairs = Vec::new();
            for round in 0..40 {
                for (i, e) in effects.iter().enumerate() {
                    if round >= stops[i] {
                        continue;
                    }
                    let mut draw = || 1.0 + noise * (rng.random::<f64>() - 0.5) * 3.4;
                    pairs.push(PairRecord {
                        benchmark: format!("micro/b{i}"),
                        round,
                        order: Order::BaseFirst,
                        base: Some(m(draw())),
                        head: Some(m((1.0 + e) * draw())),
                        error: None,
                        censored: None,
                    });
                }
            }
            let s = planned(40, 5, plan, pairs);
            let names: Vec<_> = (0..n).map(|i| bench(&format!("b{i}"))).collect();
            for (i, c) in compare(&names, &s, &thresholds(), &Floors::new())
                .into_iter()
                .enumerate()
            {
                shares.insert((s.alpha_share(stops[i] - 1) * 1e4) as u32);
                assert!(agrees(&c, t), "trial {trial}: {c:?}");
                seen.insert(c.verdict);
                rows += 1;
            }
        }
        eprintln!("{rows} rows, verdicts {seen:?}, shares x1e4 {shares:?}");
        assert_eq!(seen.len(), 4);
        assert_eq!(shares.len(), 5, "every look's share was used: {shares:?}");
    }
}
