//! The sampling plan of ARCHITECTURE §3: one discarded warm-up per benchmark and side, then
//! rounds; each round shuffles the benchmarks and runs each as a back-to-back base/head
//! pair, in balanced order (a benchmark's rounds come in AB/BA couples, which of the two
//! first by a coin flip). Sampling is adaptive: at planned looks (`min_rounds`, then about
//! half as many again each time, up to `max_rounds`) the benchmarks whose verdict is settled
//! stop; the undecided ones go on. The analysis pays for the looks (report/analysis.rs), so
//! stopping early does not raise the false-flag rate. The time budget may cut rounds after
//! `min_rounds`.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::bench::{Benchmark, Measurement, Probe, Side, SideEnv};
use crate::config::Sampling;
use crate::measure::runner::{MAX_PAD, ProcessRunner};

/// Which side of a pair ran first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    BaseFirst,
    HeadFirst,
}

/// One base/head pair of one round. A pair with a failed side is void: it is kept and
/// reported with its error, and left out of the statistics, except when a timed benchmark
/// ran out of time on one side and finished on the other: that pair is evidence
/// ([`Censored`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub benchmark: String,
    pub round: u32,
    pub order: Order,
    pub base: Option<Measurement>,
    pub head: Option<Measurement>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub censored: Option<Censored>,
}

/// The side of a pair that timed out while the other finished, and a lower bound of the
/// value it would have had: the other side's value scaled by the time limit over the other
/// side's wall time (for a whole-process time, the limit itself). The statistics use that
/// bound: the pair says "slower by at least this much", which is what it showed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Censored {
    pub side: Side,
    pub value: f64,
}

impl PairRecord {
    /// The pair's (base, head) values for the statistics: both measured, or one of them the
    /// lower bound of a side that timed out.
    pub fn values(&self) -> Option<(f64, f64)> {
        match (&self.base, &self.head, &self.error, &self.censored) {
            (Some(b), Some(h), None, None) => Some((b.value, h.value)),
            (Some(b), None, _, Some(c)) if c.side == Side::Head => Some((b.value, c.value)),
            (None, Some(h), _, Some(c)) if c.side == Side::Base => Some((c.value, h.value)),
            _ => None,
        }
    }
}

/// Why sampling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    MaxRounds,
    TimeBudget,
}

/// A benchmark taken out of the rounds, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub benchmark: String,
    pub reason: String,
    /// The benchmark skipped itself (asv's `NotImplementedError` in setup, a
    /// `skip_params` combination): not measured, and not a failure either.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// How many of `dropped` are failures (a benchmark that skipped itself is not one).
pub fn failures(dropped: &[Dropped]) -> usize {
    dropped.iter().filter(|d| !d.skipped).count()
}

/// Everything sampling produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampled {
    pub seed: u64,
    pub rounds: u32,
    /// How many looks were planned: the analysis pays for them ([`Sampled::alpha_share`]).
    #[serde(default = "one_look")]
    pub looks: u32,
    /// The rounds the planned looks come after, one per look; empty in reports from before
    /// looks had unequal shares of α.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<u32>,
    pub stopped_by: StopReason,
    pub pairs: Vec<PairRecord>,
    pub dropped: Vec<Dropped>,
    /// Each benchmark's share of α where it was decided elsewhere: a merge of shards, each
    /// sampled with its own looks and stopping (`report::merge`). Not kept in reports.
    #[serde(skip)]
    pub shares: Option<std::collections::BTreeMap<String, f64>>,
}

/// The number of looks of reports that predate adaptive sampling.
pub fn one_look() -> u32 {
    1
}

impl Sampled {
    /// The share of α spent on the analysis of a benchmark whose last pair came in round
    /// `last_round` (0-based), under this run's looks ([`alpha_share`]).
    pub fn alpha_share(&self, last_round: u32) -> f64 {
        alpha_share(self.looks, &self.plan, last_round)
    }

    /// The round of `benchmark`'s last pair (0 when it has none).
    pub fn last_round(&self, benchmark: &str) -> u32 {
        last_round(&self.pairs, benchmark)
    }
}

/// The round of `benchmark`'s last pair among `pairs` (0 when it has none).
pub fn last_round(pairs: &[PairRecord], benchmark: &str) -> u32 {
    pairs
        .iter()
        .filter(|p| p.benchmark == benchmark)
        .map(|p| p.round)
        .max()
        .unwrap_or(0)
}

/// The share of α spent on the analysis of a benchmark whose last pair came in round
/// `last_round` (0-based), with `looks` planned looks after the rounds `plan`: the share of
/// the look that data is analysed at, the first planned look at or after it (a time budget
/// that cuts sampling between looks takes the next look's share). The shares follow the
/// power spending function α·t² (Kim & DeMets, 1987) at the information fraction
/// t = n_k / n_K of look k: look k gets t_k² − t_(k−1)², so the shares add up to 1
/// (Bonferroni over the looks, weighted), and the late looks, where most verdicts are
/// reached, get the most (0.04, 0.05, 0.11, 0.25 and 0.54 for 8, 12, 18, 27 and 40 rounds).
/// Without a plan (reports from before) every look has 1/K.
///
/// The first look gets little (0.04 of α at 8 of 40 rounds: 8 pairs cannot reach the
/// 99.8 % a "no change" then needs, so only the later looks settle anything); that is the
/// price of giving the last look half of α.
pub fn alpha_share(looks: u32, plan: &[u32], last_round: u32) -> f64 {
    let k = looks.max(1);
    let planned = plan.len() == k as usize && plan.windows(2).all(|w| w[0] < w[1]);
    let Some(&last) = plan.last().filter(|&&n| planned && n > 0) else {
        return 1.0 / f64::from(k);
    };
    let seen = last_round + 1;
    let at = plan
        .iter()
        .position(|&n| n >= seen)
        .unwrap_or(k as usize - 1);
    let spent = |i: usize| (f64::from(plan[i]) / f64::from(last)).powi(2);
    spent(at) - if at == 0 { 0.0 } else { spent(at - 1) }
}

/// The rounds after which adaptive sampling looks at the data: `min_rounds`, then about
/// half as many again each time, and `max_rounds` last. A fixed number of rounds
/// (`min_rounds == max_rounds`) is one look: the classic design. A look that `max_rounds`
/// follows by less than a quarter of its rounds is left out: it would take most of the last
/// look's share of α ([`Sampled::alpha_share`]) for a handful of pairs.
pub fn looks(sampling: &Sampling) -> Vec<u32> {
    let mut at = vec![sampling.min_rounds];
    let mut last = sampling.min_rounds;
    while last < sampling.max_rounds {
        last = (last + last.div_ceil(2)).min(sampling.max_rounds);
        at.push(last);
    }
    while let [.., before, end] = at[..] {
        if 4 * end >= 5 * before {
            break;
        }
        at.remove(at.len() - 2);
    }
    at
}

/// Decides, at a look, which benchmarks are settled (their ids): they are sampled no more.
pub type Settle<'a> = &'a mut dyn FnMut(&Sampled) -> Vec<String>;

/// After this many consecutive void pairs a benchmark is dropped: it is broken, and
/// running it on would only spend the time budget on timeouts.
const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// Samples `benchmarks` on both sides. `progress` receives one human line at a time.
pub fn sample<R: ProcessRunner>(
    benchmarks: &[Benchmark],
    sides: [&SideEnv; 2],
    probe: &Probe<'_, R>,
    sampling: &Sampling,
    seed: u64,
    settle: Settle<'_>,
    progress: &mut dyn FnMut(String),
) -> Sampled {
    let plan = looks(sampling);
    let [base, head] = sides;
    debug_assert_eq!((base.side, head.side), (Side::Base, Side::Head));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dropped = Vec::new();
    let mut active: Vec<usize> = Vec::new();

    // A benchmark's time limit once one of its sides has timed out (Limits::tighten).
    let mut limits = Limits::new(benchmarks, probe.timeout);
    for (i, bench) in benchmarks.iter().enumerate() {
        let mut order = [base, head];
        order.shuffle(&mut rng);
        let mut failure = None;
        for _ in 0..sampling.warmups {
            let ran = order.map(|side| {
                let pad = rng.random_range(0..=MAX_PAD);
                (side.side, limits.measure(probe, i, bench, side, pad))
            });
            // A timed benchmark that runs out of time on one side only is not broken: its
            // rounds will say how much slower that side is.
            if censor(bench, &ran, &mut limits, i).is_some() {
                continue;
            }
            failure = ran
                .into_iter()
                .find_map(|(side, r)| r.err().map(|e| (side, e)));
            if failure.is_some() {
                break;
            }
        }
        match failure {
            Some((side, e)) => {
                let skipped = e.strip_prefix(crate::bench::SKIPPED);
                let reason = match skipped {
                    Some(why) => format!("{side}: {why}"),
                    None => format!("{side} warm-up: {e}"),
                };
                progress(format!(
                    "{} {}: {reason}",
                    bench.id,
                    if skipped.is_some() {
                        "skipped"
                    } else {
                        "dropped"
                    }
                ));
                dropped.push(Dropped {
                    benchmark: bench.id.clone(),
                    skipped: skipped.is_some(),
                    reason,
                });
            }
            None => active.push(i),
        }
    }
    if sampling.warmups > 0 {
        progress(format!(
            "warm-up done: {} benchmark(s) to sample, {} dropped",
            active.len(),
            dropped.len()
        ));
    }

    let started = Instant::now();
    let mut pairs = Vec::new();
    let mut failures = vec![0u32; benchmarks.len()];
    let mut rounds = 0;
    let mut stopped_by = StopReason::MaxRounds;
    // The order of each benchmark's next round, when it completes an AB/BA couple.
    let mut next_order: Vec<Option<Order>> = vec![None; benchmarks.len()];
    while rounds < sampling.max_rounds && !active.is_empty() {
        if rounds >= sampling.min_rounds && started.elapsed() >= sampling.time_budget {
            stopped_by = StopReason::TimeBudget;
            break;
        }
        let round_start = Instant::now();
        // New sample servers every round: each pair gets a fresh address-space layout. The
        // next round's start now, beside this one's pairs, unless this is the last round.
        if let Some(servers) = probe.servers {
            let pads = [(); 2].map(|_| rng.random_range(0..=MAX_PAD));
            let ahead: Vec<&Benchmark> = if rounds + 1 < sampling.max_rounds {
                active.iter().map(|&i| &benchmarks[i]).collect()
            } else {
                Vec::new()
            };
            servers.restart(pads, &ahead, probe.timeout);
        }
        active.shuffle(&mut rng);
        for &i in &active {
            let bench = &benchmarks[i];
            let order = next_order[i].take().unwrap_or_else(|| {
                let (first, second) = if rng.random_bool(0.5) {
                    (Order::BaseFirst, Order::HeadFirst)
                } else {
                    (Order::HeadFirst, Order::BaseFirst)
                };
                next_order[i] = Some(second);
                first
            });
            let sides = match order {
                Order::BaseFirst => [base, head],
                Order::HeadFirst => [head, base],
            };
            let runs = sides.map(|side| (side, rng.random_range(0..=MAX_PAD)));
            let ran = limits.measure_pair(probe, i, bench, runs);
            let censored = censor(bench, &ran, &mut limits, i);
            let mut record = PairRecord {
                benchmark: bench.id.clone(),
                round: rounds,
                order,
                base: None,
                head: None,
                error: None,
                censored,
            };
            let mut errors = Vec::new();
            for (side, result) in ran {
                match result {
                    Ok(m) if side == Side::Base => record.base = Some(m),
                    Ok(m) => record.head = Some(m),
                    Err(e) => errors.push(format!("{side}: {e}")),
                }
            }
            if errors.is_empty() || record.censored.is_some() {
                failures[i] = 0;
                if !errors.is_empty() {
                    record.error = Some(errors.join("; "));
                }
            } else {
                failures[i] += 1;
                record.error = Some(errors.join("; "));
            }
            pairs.push(record);
        }
        rounds += 1;
        active.retain(|&i| {
            let broken = failures[i] >= MAX_CONSECUTIVE_FAILURES;
            if broken {
                let reason = format!("{MAX_CONSECUTIVE_FAILURES} consecutive failed pairs");
                progress(format!("{} dropped: {reason}", benchmarks[i].id));
                dropped.push(Dropped {
                    benchmark: benchmarks[i].id.clone(),
                    reason,
                    skipped: false,
                });
            }
            !broken
        });
        progress(round_line(
            rounds,
            sampling,
            started.elapsed(),
            round_start.elapsed(),
        ));
        if rounds < sampling.max_rounds && plan.contains(&rounds) && !active.is_empty() {
            let so_far = Sampled {
                seed,
                rounds,
                looks: plan.len() as u32,
                plan: plan.clone(),
                stopped_by,
                pairs: pairs.clone(),
                dropped: dropped.clone(),
                shares: None,
            };
            let done = settle(&so_far);
            let before = active.len();
            active.retain(|&i| !done.contains(&benchmarks[i].id));
            progress(format!(
                "look after round {rounds}: {} settled, {} undecided go on",
                before - active.len(),
                active.len()
            ));
        }
    }
    Sampled {
        seed,
        rounds,
        looks: plan.len() as u32,
        plan,
        stopped_by,
        pairs,
        dropped,
        shares: None,
    }
}

/// Per benchmark, the time limit of its runs. Once a side of a timed benchmark has run out
/// of time while the other finished, later runs of that benchmark (both sides alike, so the
/// design stays symmetric) are limited to ten times its longest finished run (at least one
/// second, at most its own limit): a side that keeps timing out then costs ten times the
/// other, not the whole limit, and each such pair still shows a slowdown of at least ×10.
struct Limits {
    own: Vec<Duration>,
    tightened: Vec<Option<Duration>>,
    longest: Vec<f64>,
}

impl Limits {
    fn new(benchmarks: &[Benchmark], default: Duration) -> Self {
        Self {
            own: benchmarks
                .iter()
                .map(|b| b.timeout.unwrap_or(default))
                .collect(),
            tightened: vec![None; benchmarks.len()],
            longest: vec![0.0; benchmarks.len()],
        }
    }

    fn limit(&self, i: usize) -> Duration {
        self.tightened[i].unwrap_or(self.own[i])
    }

    fn measure<R: ProcessRunner>(
        &mut self,
        probe: &Probe<'_, R>,
        i: usize,
        bench: &Benchmark,
        side: &SideEnv,
        pad: usize,
    ) -> Result<Measurement, String> {
        let result = match self.tightened[i] {
            Some(limit) => {
                let bench = Benchmark {
                    timeout: Some(limit),
                    ..bench.clone()
                };
                probe.measure(&bench, side, pad)
            }
            None => probe.measure(bench, side, pad),
        };
        if let Ok(m) = &result {
            self.longest[i] = self.longest[i].max(m.wall_s);
        }
        result
    }

    /// Both runs of a pair, in lockstep where the probe can ([`Probe::measure_pair`]),
    /// else one after the other, in the order given.
    fn measure_pair<R: ProcessRunner>(
        &mut self,
        probe: &Probe<'_, R>,
        i: usize,
        bench: &Benchmark,
        runs: [(&SideEnv, usize); 2],
    ) -> [(Side, Result<Measurement, String>); 2] {
        let limited = self.tightened[i].map(|limit| Benchmark {
            timeout: Some(limit),
            ..bench.clone()
        });
        let Some(results) = probe.measure_pair(limited.as_ref().unwrap_or(bench), runs) else {
            return runs.map(|(side, pad)| (side.side, self.measure(probe, i, bench, side, pad)));
        };
        for m in results.iter().flatten() {
            self.longest[i] = self.longest[i].max(m.wall_s);
        }
        let [first, second] = results;
        [(runs[0].0.side, first), (runs[1].0.side, second)]
    }

    fn tighten(&mut self, i: usize) {
        let limit = Duration::from_secs_f64((10.0 * self.longest[i]).max(1.0));
        self.tightened[i] = Some(limit.min(self.own[i]));
    }
}

/// A pair (or warm-up) where a timed benchmark ran out of time on one side and finished on
/// the other: the lower bound of the side that timed out ([`Censored`]); its limit is
/// tightened for the runs to come.
fn censor(
    bench: &Benchmark,
    ran: &[(Side, Result<Measurement, String>); 2],
    limits: &mut Limits,
    i: usize,
) -> Option<Censored> {
    if bench.unit != "s" || bench.metric == crate::bench::Metric::PeakRss {
        return None;
    }
    let (finished, timed_out) = match ran {
        [(_, Ok(m)), (side, Err(e))] | [(side, Err(e)), (_, Ok(m))]
            if e.starts_with(crate::bench::TIMED_OUT) =>
        {
            (m, *side)
        }
        _ => return None,
    };
    let limit = limits.limit(i).as_secs_f64();
    let value = finished.value * (limit / finished.wall_s.max(f64::MIN_POSITIVE)).max(1.0);
    limits.tighten(i);
    Some(Censored {
        side: timed_out,
        value,
    })
}

fn round_line(done: u32, sampling: &Sampling, elapsed: Duration, last: Duration) -> String {
    let left = sampling.max_rounds - done;
    let by_rounds = last.as_secs_f64() * f64::from(left);
    let by_budget = if done >= sampling.min_rounds {
        sampling.time_budget.saturating_sub(elapsed).as_secs_f64()
    } else {
        f64::INFINITY
    };
    format!(
        "round {done}/{} done in {:.1} s ({:.0} s elapsed, about {:.0} s left)",
        sampling.max_rounds,
        last.as_secs_f64(),
        elapsed.as_secs_f64(),
        by_rounds.min(by_budget.max(last.as_secs_f64()))
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod simulation;
