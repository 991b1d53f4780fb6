//! The sequential design checked by simulation (ARCHITECTURE §3): the real scheduler and the
//! real analysis, with a runner that draws each run's time from a model of a noisy machine.
//! Seeds are fixed, so every figure here is reproducible; the rates are Monte Carlo
//! estimates, with bounds a correct design meets by a clear margin.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::bench::{Layer, Metric};
use crate::config::Thresholds;
use crate::measure::runner::{RunOutcome, RunSpec};
use crate::report::analysis;
use crate::stats::Verdict;

/// A machine: every run of benchmark `b` on a side takes 1 s × (1 + effect[b] on head) ×
/// exp(N(0, noise)); with probability `outliers` a base run is 1.3× slower; the second run
/// of a pair is `carry_over` faster (a warm cache left by the first).
struct Machine {
    rng: RefCell<StdRng>,
    calls: Cell<u64>,
    effect: HashMap<String, f64>,
    noise: f64,
    outliers: f64,
    carry_over: f64,
}

impl Machine {
    fn new(seed: u64, noise: f64) -> Self {
        Self {
            rng: RefCell::new(StdRng::seed_from_u64(seed)),
            calls: Cell::new(0),
            effect: HashMap::new(),
            noise,
            outliers: 0.0,
            carry_over: 0.0,
        }
    }

    fn gaussian(&self) -> f64 {
        let mut rng = self.rng.borrow_mut();
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

impl ProcessRunner for Machine {
    fn run(&self, spec: &RunSpec) -> io::Result<RunOutcome> {
        let head = spec.cwd.ends_with("head");
        let call = self.calls.get();
        self.calls.set(call + 1);
        let mut t = (self.noise * self.gaussian()).exp();
        if head {
            t *= 1.0 + self.effect.get(&spec.argv[0]).copied().unwrap_or(0.0);
        } else if self.rng.borrow_mut().random::<f64>() < self.outliers {
            t *= 1.3;
        }
        // Without warm-ups every pair is two consecutive calls.
        if call % 2 == 1 {
            t *= 1.0 - self.carry_over;
        }
        Ok(RunOutcome {
            wall: Duration::from_secs_f64(t),
            user: Duration::ZERO,
            sys: Duration::ZERO,
            max_rss: 0,
            status: ExitStatus::from_raw(0),
            timed_out: false,
        })
    }
}

const THRESHOLDS: Thresholds = Thresholds {
    min_effect_percent: 2.0,
    alpha: 0.05,
    calibration: crate::config::CalibrationMode::Auto,
};

/// How the looks are paid for: as designed, with an equal share of α per look (the
/// design before the shares followed the rounds), or naively (each look tested at the
/// full α).
#[derive(Clone, Copy, PartialEq)]
enum Design {
    Sequential,
    EqualShares,
    Naive,
}

/// One comparison of `n` benchmarks (`b0`, `b1`, …) on `machine`: the verdicts, in order,
/// and the total number of pairs run.
fn compare(
    machine: &Machine,
    n: usize,
    rounds: (u32, u32),
    design: Design,
) -> (Vec<Verdict>, usize) {
    let benchmarks: Vec<Benchmark> = (0..n)
        .map(|i| {
            let name = format!("b{i}");
            Benchmark::new(
                Layer::Startup,
                &name,
                Metric::WallTime,
                "s",
                vec![name.clone()],
            )
        })
        .collect();
    let scratch = tempfile::tempdir().unwrap();
    let probe = Probe {
        runner: machine,
        scratch: scratch.path(),
        timeout: Duration::from_secs(5),
        servers: None,
        cpu: None,
    };
    let sides = [Side::Base, Side::Head].map(|side| SideEnv {
        side,
        checkout: PathBuf::from(format!("/nowhere/{side}")),
        env: vec![],
        writable: None,
    });
    let sampling = Sampling {
        warmups: 0,
        min_rounds: rounds.0,
        max_rounds: rounds.1,
        time_budget: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        seed: None,
        fork: true,
        repeat: 5,
        pin_cpu: false,
        lockstep: false,
    };
    let seen = |s: &Sampled| {
        let mut s = s.clone();
        match design {
            Design::Sequential => {}
            Design::EqualShares => s.plan.clear(),
            Design::Naive => {
                s.looks = 1;
                s.plan.clear();
            }
        }
        s
    };
    let mut settle = |so_far: &Sampled| {
        let now = analysis::compare(&benchmarks, &seen(so_far), &THRESHOLDS, &Default::default());
        analysis::settled(&now, THRESHOLDS.alpha, 2 * n)
    };
    let seed = machine.rng.borrow_mut().random();
    let sampled = sample(
        &benchmarks,
        [&sides[0], &sides[1]],
        &probe,
        &sampling,
        seed,
        &mut settle,
        &mut |_| {},
    );
    let out = analysis::compare(
        &benchmarks,
        &seen(&sampled),
        &THRESHOLDS,
        &Default::default(),
    );
    (out.iter().map(|c| c.verdict).collect(), sampled.pairs.len())
}

fn flagged(v: &Verdict) -> bool {
    matches!(v, Verdict::Regressed | Verdict::Improved)
}

/// The least favourable null: every benchmark changed by exactly δ (+2 %), so each test's
/// null hypothesis holds at its boundary. Stopping at looks must not flag more often than
/// α; testing each look at the full α (peeking) does, which this test also shows.
#[test]
fn adaptive_stopping_keeps_the_false_flag_rate_at_alpha() {
    let runs = 300;
    let rate = |design| {
        let machine = Machine::new(7, 0.01);
        let mut machine = machine;
        machine.effect = (0..5).map(|i| (format!("b{i}"), 0.02)).collect();
        let flagged_runs = (0..runs)
            .filter(|_| compare(&machine, 5, (8, 40), design).0.iter().any(flagged))
            .count();
        flagged_runs as f64 / runs as f64
    };
    let sequential = rate(Design::Sequential);
    let naive = rate(Design::Naive);
    eprintln!("false-flag rate at the boundary null: sequential {sequential}, naive {naive}");
    // α = 0.05; 300 runs give a standard error of about 0.013.
    assert!(sequential <= 0.05, "sequential design: {sequential}");
    assert!(
        naive > sequential,
        "naive {naive} vs sequential {sequential}"
    );
}

/// A/A: nothing flagged, and most rows "no change" rather than "inconclusive".
#[test]
fn an_a_a_comparison_flags_nothing_and_mostly_settles_as_no_change() {
    let machine = Machine::new(11, 0.01);
    let mut no_change = 0;
    for _ in 0..20 {
        let (verdicts, _) = compare(&machine, 20, (8, 40), Design::Sequential);
        assert!(!verdicts.iter().any(flagged), "{verdicts:?}");
        no_change += verdicts.iter().filter(|v| **v == Verdict::NoChange).count();
    }
    eprintln!("A/A: {no_change} of 400 rows no change");
    assert!(
        no_change >= 400 * 9 / 10,
        "{no_change} of 400 rows no change"
    );
}

/// Settled benchmarks stop: an A/A suite costs far fewer pairs than max_rounds of all.
#[test]
fn settled_benchmarks_stop_being_sampled() {
    let machine = Machine::new(13, 0.01);
    let (_, pairs) = compare(&machine, 20, (8, 40), Design::Sequential);
    eprintln!(
        "A/A, 20 benchmarks: {pairs} pairs (fixed rounds: {})",
        20 * 40
    );
    assert!(pairs < 20 * 40 / 2, "{pairs} pairs");
}

/// No blind spot: a lone +10 % among 1,000 benchmarks is found, and nothing else flagged.
#[test]
fn a_lone_regression_among_a_thousand_benchmarks_is_found() {
    let mut machine = Machine::new(17, 0.01);
    machine.effect.insert("b500".into(), 0.10);
    let (verdicts, pairs) = compare(&machine, 1000, (8, 40), Design::Sequential);
    eprintln!("1,000 benchmarks: {pairs} pairs, b500 {:?}", verdicts[500]);
    assert_eq!(verdicts[500], Verdict::Regressed);
    let others = verdicts
        .iter()
        .enumerate()
        .filter(|(i, v)| *i != 500 && flagged(v))
        .count();
    assert_eq!(others, 0);
    assert!(pairs < 1000 * 40 / 2, "{pairs} pairs");
}

/// One stray sample cannot block a clear verdict: +15 % with 5 % of base runs 1.3× slow.
#[test]
fn outliers_do_not_block_a_clear_regression() {
    let mut machine = Machine::new(19, 0.02);
    machine.outliers = 0.05;
    machine.effect.insert("b0".into(), 0.15);
    let found = (0..50)
        .filter(|_| compare(&machine, 20, (8, 40), Design::Sequential).0[0] == Verdict::Regressed)
        .count();
    eprintln!("+15 % with outliers: found in {found} of 50");
    assert!(found >= 48, "found in {found} of 50");
}

/// Balanced AB/BA order: a 2 % carry-over (the second run of a pair faster) neither hides
/// a +5 % regression nor invents one in an A/A comparison.
#[test]
fn a_carry_over_effect_is_balanced_out() {
    let mut machine = Machine::new(23, 0.01);
    machine.carry_over = 0.02;
    machine.effect.insert("b0".into(), 0.05);
    let mut found = 0;
    for _ in 0..50 {
        let (verdicts, _) = compare(&machine, 10, (8, 40), Design::Sequential);
        found += usize::from(verdicts[0] == Verdict::Regressed);
        assert!(!verdicts[1..].iter().any(flagged), "{verdicts:?}");
    }
    eprintln!("+5 % with carry-over: found in {found} of 50");
    assert!(found >= 48, "found in {found} of 50");
}

/// At the noise of a real suite on a shared 2-core machine (about 4 % per pair: each run
/// exp(N(0, 2.8 %))), the looks' shares of α following their rounds reach more "no change"
/// rows in an A/A comparison than equal shares do, for no more pairs.
#[test]
fn shares_that_follow_the_rounds_settle_more_a_a_rows() {
    let run = |design| {
        let machine = Machine::new(29, 0.028);
        let (mut no_change, mut pairs) = (0, 0);
        for _ in 0..10 {
            let (verdicts, n) = compare(&machine, 27, (8, 40), design);
            assert!(!verdicts.iter().any(flagged), "{verdicts:?}");
            no_change += verdicts.iter().filter(|v| **v == Verdict::NoChange).count();
            pairs += n;
        }
        (no_change, pairs)
    };
    let weighted = run(Design::Sequential);
    let equal = run(Design::EqualShares);
    eprintln!(
        "A/A at 4 % per pair, 270 rows: no change {} with shares by rounds ({} pairs), {} with equal shares ({} pairs)",
        weighted.0, weighted.1, equal.0, equal.1
    );
    assert!(weighted.0 > equal.0, "{weighted:?} vs {equal:?}");
    assert!(
        weighted.0 * 2 > 270,
        "{weighted:?}: most rows should be no change"
    );
    assert!(weighted.1 <= equal.1, "{weighted:?} vs {equal:?}");
}
