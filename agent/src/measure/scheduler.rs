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
/// reported with its error, and left out of the statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub benchmark: String,
    pub round: u32,
    pub order: Order,
    pub base: Option<Measurement>,
    pub head: Option<Measurement>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl PairRecord {
    pub fn values(&self) -> Option<(f64, f64)> {
        match (&self.base, &self.head, &self.error) {
            (Some(b), Some(h), None) => Some((b.value, h.value)),
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
    /// How many looks were planned: the analysis multiplies each p-value by it.
    #[serde(default = "one_look")]
    pub looks: u32,
    pub stopped_by: StopReason,
    pub pairs: Vec<PairRecord>,
    pub dropped: Vec<Dropped>,
}

/// The number of looks of reports that predate adaptive sampling.
pub fn one_look() -> u32 {
    1
}

/// The rounds after which adaptive sampling looks at the data: `min_rounds`, then about
/// half as many again each time, and `max_rounds` last. A fixed number of rounds
/// (`min_rounds == max_rounds`) is one look: the classic design.
pub fn looks(sampling: &Sampling) -> Vec<u32> {
    let mut at = vec![sampling.min_rounds];
    let mut last = sampling.min_rounds;
    while last < sampling.max_rounds {
        last = (last + last.div_ceil(2)).min(sampling.max_rounds);
        at.push(last);
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

    for (i, bench) in benchmarks.iter().enumerate() {
        let mut order = [base, head];
        order.shuffle(&mut rng);
        let failure = (0..sampling.warmups).find_map(|_| {
            order.iter().find_map(|side| {
                probe
                    .measure(bench, side, rng.random_range(0..=MAX_PAD))
                    .err()
                    .map(|e| (side.side, e))
            })
        });
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
        // New sample servers every round: each pair gets a fresh address-space layout.
        if let Some(servers) = probe.servers {
            servers.restart();
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
            let [first, second] = sides.map(|side| {
                (
                    side.side,
                    probe.measure(bench, side, rng.random_range(0..=MAX_PAD)),
                )
            });
            let mut record = PairRecord {
                benchmark: bench.id.clone(),
                round: rounds,
                order,
                base: None,
                head: None,
                error: None,
            };
            let mut errors = Vec::new();
            for (side, result) in [first, second] {
                match result {
                    Ok(m) if side == Side::Base => record.base = Some(m),
                    Ok(m) => record.head = Some(m),
                    Err(e) => errors.push(format!("{side}: {e}")),
                }
            }
            if errors.is_empty() {
                failures[i] = 0;
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
                stopped_by,
                pairs: pairs.clone(),
                dropped: dropped.clone(),
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
        stopped_by,
        pairs,
        dropped,
    }
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
