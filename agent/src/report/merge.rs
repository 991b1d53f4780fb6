//! `benchvm merge`: the shards of one comparison back into one report. The verdicts are
//! recomputed from the shards' pairs, so Benjamini–Hochberg runs over every p-value of the
//! whole set, exactly as if one host had measured everything.

use crate::bench::Layer;
use crate::measure::scheduler::{self, Sampled};
use crate::report::{Report, Summary, analysis};
use crate::shard::Shard;
use crate::spans::Span;

/// Why shard reports cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no reports to merge")]
    Empty,
    #[error(
        "{0} is not a shard report (run it with --shard I/N), and there is more than one report"
    )]
    NotAShard(String),
    #[error("the reports compare different commits: {0}")]
    DifferentCommits(String),
    #[error("the reports use different thresholds (min_effect_percent, alpha): {0}")]
    DifferentThresholds(String),
    #[error("the reports come from splits into different numbers of shards: {0}")]
    DifferentCounts(String),
    #[error("shard {0} is missing")]
    Missing(Shard),
    #[error("shard {0} is given twice")]
    Duplicate(Shard),
    #[error("benchmark {0} was measured in two shards")]
    Overlap(String),
}

/// Merges `reports` (one per shard, any order; `origins` name them in errors).
pub fn merge(reports: Vec<(String, Report)>) -> Result<Report, MergeError> {
    if reports.is_empty() {
        return Err(MergeError::Empty);
    }
    if reports.len() == 1 && reports[0].1.shard.is_none() {
        return Ok(reports.into_iter().next().expect("one").1);
    }
    let mut shards = Vec::new();
    for (origin, r) in &reports {
        shards.push(
            r.shard
                .ok_or_else(|| MergeError::NotAShard(origin.clone()))?,
        );
    }
    let first = &reports[0].1;
    let listed = |f: &dyn Fn(&Report) -> String| {
        reports
            .iter()
            .map(|(o, r)| format!("{o}: {}", f(r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if reports
        .iter()
        .any(|(_, r)| r.base.commit != first.base.commit || r.head.commit != first.head.commit)
    {
        return Err(MergeError::DifferentCommits(listed(&|r| {
            format!("{}..{}", short(&r.base.commit), short(&r.head.commit))
        })));
    }
    if reports
        .iter()
        .any(|(_, r)| r.thresholds != first.thresholds)
    {
        return Err(MergeError::DifferentThresholds(listed(&|r| {
            format!(
                "{} %, {}",
                r.thresholds.min_effect_percent, r.thresholds.alpha
            )
        })));
    }
    let count = shards[0].count;
    if shards.iter().any(|s| s.count != count) {
        return Err(MergeError::DifferentCounts(listed(&|r| {
            r.shard.map_or("-".into(), |s| s.to_string())
        })));
    }
    for index in 1..=count {
        let n = shards.iter().filter(|s| s.index == index).count();
        let shard = Shard { index, count };
        match n {
            0 => return Err(MergeError::Missing(shard)),
            1 => {}
            _ => return Err(MergeError::Duplicate(shard)),
        }
    }

    let mut reports: Vec<Report> = reports.into_iter().map(|(_, r)| r).collect();
    reports.sort_by_key(|r| r.shard.map(|s| s.index));
    let mut merged = reports[0].clone();
    merged.shard = None;
    merged.benchmarks.clear();
    merged.samples.clear();
    merged.dropped.clear();
    merged.quality.clear();
    merged.spans.clear();
    for r in &reports {
        let shard = r.shard.expect("checked");
        for b in &r.benchmarks {
            if merged.benchmarks.iter().any(|m| m.id == b.id) {
                return Err(MergeError::Overlap(b.id.clone()));
            }
            merged.benchmarks.push(b.clone());
        }
        merged.samples.extend(r.samples.iter().cloned());
        merged.dropped.extend(r.dropped.iter().cloned());
        merged.quality.extend(r.quality.iter().cloned());
        merged.spans.extend(r.spans.iter().map(|s| Span {
            name: format!("shard {shard}: {}", s.name),
            ..s.clone()
        }));
        merged.sampling.rounds = merged.sampling.rounds.max(r.sampling.rounds);
        if r.sampling.looks > merged.sampling.looks {
            merged.sampling.looks = r.sampling.looks;
            merged.sampling.plan = r.sampling.plan.clone();
        }
        merged.fail_on_regression |= r.fail_on_regression;
        if merged.importtime.is_none() {
            merged.importtime = r.importtime.clone();
        }
        if let Some(c) = &r.calibration {
            let m = merged.calibration.get_or_insert_with(Default::default);
            m.a_a_run |= c.a_a_run;
            m.calibrated_now.extend(c.calibrated_now.iter().cloned());
            m.above_delta.extend(c.above_delta.clone());
        }
    }
    // Each shard stopped its benchmarks at its own looks: a benchmark's share of α is the one
    // its shard's sampling gives it, whatever the other shards did.
    let mut shares = std::collections::BTreeMap::new();
    for r in &reports {
        for b in &r.benchmarks {
            let last = scheduler::last_round(&r.samples, &b.id);
            let share = scheduler::alpha_share(r.sampling.looks, &r.sampling.plan, last);
            shares.insert(b.id.clone(), share);
        }
    }
    let layer_rank = |l: Layer| Layer::ALL.iter().position(|x| *x == l);
    merged.benchmarks.sort_by_key(|b| layer_rank(b.layer));
    let sampled = Sampled {
        seed: merged.seed,
        rounds: merged.sampling.rounds,
        looks: merged.sampling.looks,
        plan: merged.sampling.plan.clone(),
        stopped_by: merged.sampling.stopped_by,
        pairs: merged.samples.clone(),
        dropped: merged.dropped.clone(),
        shares: Some(shares),
    };
    // Each shard's host judged its benchmarks against its own calibrated floors.
    let floors: crate::calibration::Floors = reports
        .iter()
        .flat_map(|r| &r.comparisons)
        .filter_map(|c| Some((c.benchmark.clone(), c.min_effect_percent?)))
        .collect();
    merged.comparisons =
        analysis::compare(&merged.benchmarks, &sampled, &merged.thresholds, &floors);
    merged.summary = Summary::of(&merged.comparisons, scheduler::failures(&merged.dropped));
    Ok(merged)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Benchmark, Measurement, Metric};
    use crate::config::{Sampling, Thresholds};
    use crate::machine::Machine;
    use crate::measure::scheduler::{Order, PairRecord, StopReason};
    use crate::report::{Revision, SamplingSummary, Tool};
    use crate::shard::assign;
    use crate::stats::Verdict;

    fn m(v: f64) -> Measurement {
        Measurement {
            value: v,
            wall_s: v,
            user_s: 0.0,
            sys_s: 0.0,
            max_rss_bytes: 0,
        }
    }

    /// A report of nine benchmarks with planted changes, its verdicts computed.
    fn whole() -> Report {
        let names: Vec<(Layer, String, f64)> = (0..9)
            .map(|i| {
                let layer = [
                    Layer::Startup,
                    Layer::Micro,
                    Layer::Micro,
                    Layer::Integration,
                ][i % 4];
                let factor = [1.3, 0.7, 1.0, 1.01, 1.25, 0.8, 1.0, 1.1, 0.98][i];
                (layer, format!("b{i}"), factor)
            })
            .collect();
        let benchmarks: Vec<Benchmark> = names
            .iter()
            .map(|(l, n, _)| Benchmark::new(*l, n, Metric::WallTime, "s", vec![]))
            .collect();
        let mut samples = Vec::new();
        for round in 0..14u32 {
            for (b, (_, _, factor)) in benchmarks.iter().zip(&names) {
                let jitter = 1.0 + f64::from((round * 7919 + b.id.len() as u32 * 31) % 13) / 1000.0;
                let jitter2 = 1.0 + f64::from((round * 104_729) % 11) / 1000.0;
                samples.push(PairRecord {
                    benchmark: b.id.clone(),
                    round,
                    order: Order::BaseFirst,
                    base: Some(m(0.1 * jitter)),
                    head: Some(m(0.1 * factor * jitter2)),
                    error: None,
                    censored: None,
                });
            }
        }
        let thresholds = Thresholds {
            min_effect_percent: 2.0,
            alpha: 0.05,
            calibration: crate::config::CalibrationMode::Auto,
        };
        let sampled = Sampled {
            seed: 1,
            rounds: 14,
            looks: 1,
            plan: vec![],
            stopped_by: StopReason::MaxRounds,
            pairs: samples.clone(),
            dropped: vec![],
            shares: None,
        };
        let comparisons =
            analysis::compare(&benchmarks, &sampled, &thresholds, &Default::default());
        Report {
            schema_version: crate::report::SCHEMA_VERSION.into(),
            tool: Tool::this(),
            repository: "repo".into(),
            base: Revision {
                reference: "main".into(),
                commit: "a".repeat(40),
            },
            head: Revision {
                reference: "perf".into(),
                commit: "b".repeat(40),
            },
            machine: Machine::read(),
            python: None,
            seed: 1,
            sampling: SamplingSummary {
                config: Sampling {
                    warmups: 1,
                    min_rounds: 14,
                    max_rounds: 14,
                    time_budget: std::time::Duration::from_secs(60),
                    timeout: std::time::Duration::from_secs(60),
                    seed: None,
                    fork: true,
                    repeat: 5,
                    pin_cpu: false,
                    lockstep: false,
                },
                rounds: 14,
                looks: 1,
                plan: vec![],
                stopped_by: StopReason::MaxRounds,
            },
            thresholds,
            fail_on_regression: false,
            summary: Summary::of(&comparisons, 0),
            benchmarks,
            samples,
            dropped: vec![],
            comparisons,
            importtime: None,
            quality: vec![],
            spans: vec![],
            selection: None,
            shard: None,
            calibration: None,
        }
    }

    /// `whole` cut into `count` shard reports the way `--shard` would cut it.
    fn split(whole: &Report, count: u32) -> Vec<(String, Report)> {
        let ids: Vec<String> = whole.benchmarks.iter().map(|b| b.id.clone()).collect();
        let of = assign(&ids, &Default::default(), count);
        (1..=count)
            .map(|index| {
                let keep: Vec<&String> = ids
                    .iter()
                    .zip(&of)
                    .filter(|(_, s)| **s == index)
                    .map(|(id, _)| id)
                    .collect();
                let mut r = whole.clone();
                r.shard = Some(Shard { index, count });
                r.benchmarks.retain(|b| keep.contains(&&b.id));
                r.samples.retain(|p| keep.contains(&&p.benchmark));
                let sampled = Sampled {
                    seed: 1,
                    rounds: 14,
                    looks: 1,
                    plan: vec![],
                    stopped_by: StopReason::MaxRounds,
                    pairs: r.samples.clone(),
                    dropped: vec![],
                    shares: None,
                };
                r.comparisons =
                    analysis::compare(&r.benchmarks, &sampled, &r.thresholds, &Default::default());
                r.summary = Summary::of(&r.comparisons, 0);
                (format!("shard{index}.json"), r)
            })
            .collect()
    }

    fn verdicts(r: &Report) -> Vec<(String, Verdict, Option<f64>)> {
        let mut v: Vec<_> = r
            .comparisons
            .iter()
            .map(|c| (c.benchmark.clone(), c.verdict, c.q_regressed))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn merged_shards_give_the_unsharded_verdicts_and_q_values() {
        let whole = whole();
        let planted = verdicts(&whole);
        assert!(planted.iter().any(|v| v.1 == Verdict::Regressed));
        assert!(planted.iter().any(|v| v.1 == Verdict::Improved));
        let mut shards = split(&whole, 3);
        let merged = merge(shards.clone()).unwrap();
        assert_eq!(verdicts(&merged), planted);
        assert_eq!(merged.summary, whole.summary);
        assert_eq!(merged.shard, None);
        shards.reverse();
        assert_eq!(verdicts(&merge(shards).unwrap()), planted, "any order");
    }

    /// Each shard's host judged its benchmarks against its own floors; the merge keeps them.
    #[test]
    fn a_shard_host_s_noise_floor_survives_the_merge() {
        let whole = whole();
        let b0 = whole.benchmarks[0].id.clone();
        let before = whole
            .comparisons
            .iter()
            .find(|c| c.benchmark == b0)
            .unwrap();
        assert_eq!(before.verdict, Verdict::Regressed, "b0 is +30 %");
        let mut shards = split(&whole, 3);
        let holder = shards
            .iter_mut()
            .find(|(_, r)| r.benchmarks.iter().any(|b| b.id == b0))
            .expect("some shard holds b0");
        let floors = crate::calibration::Floors::from([(b0.clone(), 40.0)]);
        let sampled = Sampled {
            seed: 1,
            rounds: 14,
            looks: 1,
            plan: vec![],
            stopped_by: StopReason::MaxRounds,
            pairs: holder.1.samples.clone(),
            dropped: vec![],
            shares: None,
        };
        holder.1.comparisons = analysis::compare(
            &holder.1.benchmarks,
            &sampled,
            &holder.1.thresholds,
            &floors,
        );
        let merged = merge(shards).unwrap();
        let row = merged
            .comparisons
            .iter()
            .find(|c| c.benchmark == b0)
            .unwrap();
        assert_eq!(row.min_effect_percent, Some(40.0));
        assert_ne!(row.verdict, Verdict::Regressed, "{row:?}");
    }

    /// Shards stop at their own looks: a shard sampled with looks at 8 and 14 rounds gives
    /// its benchmarks the last look's share of α in the merge, whatever plan another shard
    /// had, and one that ran a single look keeps all of α.
    #[test]
    fn each_shard_s_benchmarks_keep_their_own_share_of_alpha() {
        let whole = whole();
        let mut shards = split(&whole, 3);
        let planned = &mut shards[0].1;
        planned.sampling.looks = 2;
        planned.sampling.plan = vec![8, 14];
        let in_planned: Vec<String> = planned.benchmarks.iter().map(|b| b.id.clone()).collect();
        let in_others: Vec<String> = shards[1..]
            .iter()
            .flat_map(|(_, r)| r.benchmarks.iter().map(|b| b.id.clone()))
            .collect();
        assert!(!in_planned.is_empty() && !in_others.is_empty());
        let merged = merge(shards).unwrap();
        assert_eq!(
            merged.sampling.plan,
            [8, 14],
            "the plan with the most looks is shown"
        );
        let whole_p: Vec<(String, f64)> = whole
            .comparisons
            .iter()
            .filter_map(|c| Some((c.benchmark.clone(), c.p_regressed?)))
            .collect();
        let share = 1.0 - (8.0f64 / 14.0).powi(2);
        for c in &merged.comparisons {
            let Some(p) = c.p_regressed else { continue };
            let (_, one_look) = whole_p.iter().find(|(id, _)| *id == c.benchmark).unwrap();
            let expected = if in_planned.contains(&c.benchmark) {
                (one_look / share).min(1.0)
            } else {
                *one_look
            };
            assert!(
                (p - expected).abs() < 1e-12,
                "{}: {p} vs {expected}",
                c.benchmark
            );
        }
    }

    #[test]
    fn bh_runs_over_the_whole_set_not_per_shard() {
        let whole = whole();
        let shards = split(&whole, 3);
        let per_shard: Vec<_> = shards.iter().flat_map(|(_, r)| verdicts(r)).collect();
        let merged = verdicts(&merge(shards).unwrap());
        let q = |v: &[(String, Verdict, Option<f64>)]| {
            let mut q: Vec<_> = v.iter().map(|x| (x.0.clone(), x.2)).collect();
            q.sort_by(|a, b| a.0.cmp(&b.0));
            q
        };
        assert_ne!(
            q(&per_shard),
            q(&merged),
            "per-shard q-values differ from the merged ones"
        );
    }

    #[test]
    fn mismatched_inputs_are_refused_by_name() {
        let whole = whole();
        let shards = split(&whole, 3);
        assert_eq!(merge(vec![]), Err(MergeError::Empty));
        let two: Vec<_> = shards[..2].to_vec();
        assert_eq!(merge(two).unwrap_err().to_string(), "shard 3/3 is missing");
        let mut dup = shards.clone();
        dup[2] = dup[1].clone();
        assert!(matches!(
            merge(dup),
            Err(MergeError::Missing(_)) | Err(MergeError::Duplicate(_))
        ));
        let mut other = shards.clone();
        other[1].1.head.commit = "c".repeat(40);
        assert!(matches!(merge(other), Err(MergeError::DifferentCommits(_))));
        let mut thr = shards.clone();
        thr[0].1.thresholds.alpha = 0.01;
        assert!(matches!(
            merge(thr),
            Err(MergeError::DifferentThresholds(_))
        ));
        let mut count = shards.clone();
        count[0].1.shard = Some(Shard { index: 1, count: 4 });
        assert!(matches!(merge(count), Err(MergeError::DifferentCounts(_))));
        let mut plain = shards.clone();
        plain[0].1.shard = None;
        assert_eq!(
            merge(plain).unwrap_err(),
            MergeError::NotAShard("shard1.json".into())
        );
        let mut overlap = shards;
        let stolen = overlap[0].1.benchmarks[0].clone();
        overlap[1].1.benchmarks.push(stolen.clone());
        assert_eq!(merge(overlap).unwrap_err(), MergeError::Overlap(stolen.id));
        // One plain report merges to itself.
        assert_eq!(merge(vec![("r".into(), whole.clone())]).unwrap(), whole);
    }
}
