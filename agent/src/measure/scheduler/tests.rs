use std::cell::RefCell;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;

use super::*;
use crate::bench::{Layer, Metric};
use crate::measure::runner::{RunOutcome, RunSpec};

/// A runner that answers from a script: the wall time is a function of the command and
/// the side (read from the checkout path), and it logs every call with its time limit. A
/// wall time beyond the limit is a run killed at the limit.
struct Scripted {
    log: RefCell<Vec<(String, String)>>,
    limits: RefCell<Vec<Duration>>,
    wall: fn(&str, &str, usize) -> Option<f64>,
}

impl Scripted {
    fn new(wall: fn(&str, &str, usize) -> Option<f64>) -> Self {
        Self {
            log: RefCell::default(),
            limits: RefCell::default(),
            wall,
        }
    }
}

impl ProcessRunner for Scripted {
    fn run(&self, spec: &RunSpec) -> io::Result<RunOutcome> {
        let side = spec.cwd.file_name().unwrap().to_string_lossy().into_owned();
        let cmd = spec.argv.join(" ");
        let n = self.log.borrow().len();
        self.log.borrow_mut().push((cmd.clone(), side.clone()));
        self.limits.borrow_mut().push(spec.timeout);
        let (secs, code) = match (self.wall)(&cmd, &side, n) {
            Some(s) => (s, 0),
            None => (0.001, 1),
        };
        let timed_out = secs > spec.timeout.as_secs_f64();
        Ok(RunOutcome {
            wall: Duration::from_secs_f64(secs).min(spec.timeout),
            user: Duration::ZERO,
            sys: Duration::ZERO,
            max_rss: 1 << 20,
            status: if timed_out {
                ExitStatus::from_raw(9)
            } else {
                ExitStatus::from_raw(code << 8)
            },
            timed_out,
        })
    }
}

fn side(side: Side) -> SideEnv {
    SideEnv {
        side,
        checkout: PathBuf::from(format!("/nowhere/{side}")),
        env: vec![],
        writable: None,
    }
}

fn benches(names: &[&str]) -> Vec<Benchmark> {
    names
        .iter()
        .map(|n| {
            Benchmark::new(
                Layer::Startup,
                n,
                Metric::WallTime,
                "s",
                vec![n.to_string()],
            )
        })
        .collect()
}

fn sampling(rounds: u32) -> Sampling {
    Sampling {
        warmups: 1,
        min_rounds: rounds,
        max_rounds: rounds,
        time_budget: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        seed: None,
        fork: true,
        repeat: 5,
        pin_cpu: false,
        lockstep: false,
    }
}

fn run(runner: &Scripted, names: &[&str], rounds: u32, seed: u64) -> Sampled {
    sample_with(runner, &benches(names), &sampling(rounds), seed)
}

/// Samples `planned` through `runner` with a 5 s limit and no settling.
fn sample_with(runner: &Scripted, planned: &[Benchmark], plan: &Sampling, seed: u64) -> Sampled {
    let scratch = tempfile::tempdir().unwrap();
    let probe = Probe {
        runner,
        scratch: scratch.path(),
        timeout: Duration::from_secs(5),
        servers: None,
        cpu: None,
    };
    let (b, h) = (side(Side::Base), side(Side::Head));
    sample(
        planned,
        [&b, &h],
        &probe,
        plan,
        seed,
        &mut |_| vec![],
        &mut |_| {},
    )
}

#[test]
fn every_round_pairs_every_benchmark_back_to_back() {
    let runner = Scripted::new(|_, side, _| Some(if side == "head" { 0.2 } else { 0.1 }));
    let s = run(&runner, &["a", "b", "c"], 5, 7);
    assert_eq!(s.rounds, 5);
    assert_eq!(s.pairs.len(), 15);
    // 3 benchmarks x 2 sides of warm-up, then pairs.
    let log = runner.log.borrow();
    assert_eq!(log.len(), 6 + 30);
    for pair in log[6..].chunks(2) {
        assert_eq!(pair[0].0, pair[1].0, "a pair runs one benchmark");
        assert_ne!(pair[0].1, pair[1].1, "a pair runs both sides");
    }
    for p in &s.pairs {
        assert_eq!(p.values(), Some((0.1, 0.2)));
    }
}

#[test]
fn order_and_shuffle_are_random_but_reproducible_from_the_seed() {
    let make = || Scripted::new(|_, _, _| Some(0.1));
    let (r1, r2, r3) = (make(), make(), make());
    let a = run(&r1, &["a", "b", "c", "d"], 20, 42);
    let b = run(&r2, &["a", "b", "c", "d"], 20, 42);
    let c = run(&r3, &["a", "b", "c", "d"], 20, 43);
    assert_ne!(a, c);
    assert_eq!(a, b);
    assert_eq!(*r1.log.borrow(), *r2.log.borrow());
    assert_ne!(*r1.log.borrow(), *r3.log.borrow());
    let head_first = a
        .pairs
        .iter()
        .filter(|p| p.order == Order::HeadFirst)
        .count();
    assert!(
        (20..=60).contains(&head_first),
        "coin flips: {head_first} of 80"
    );
    let first_in_round: std::collections::HashSet<_> = a
        .pairs
        .chunks(4)
        .map(|round| round[0].benchmark.clone())
        .collect();
    assert!(first_in_round.len() > 1, "rounds are shuffled");
}

#[test]
fn a_failed_run_voids_its_pair_and_is_reported() {
    let runner = Scripted::new(
        // The 10th call (a head run of some pair) fails once.
        |_, _, n| (n != 9).then_some(0.1),
    );
    let s = run(&runner, &["a", "b"], 4, 1);
    let void: Vec<_> = s.pairs.iter().filter(|p| p.values().is_none()).collect();
    assert_eq!(void.len(), 1);
    assert!(
        void[0]
            .error
            .as_ref()
            .unwrap()
            .contains("exited with status 1")
    );
    assert_eq!(s.pairs.len(), 8, "the void pair is kept, not dropped");
    assert!(s.dropped.is_empty());
}

#[test]
fn a_benchmark_broken_on_one_side_is_dropped_at_warm_up() {
    let runner = Scripted::new(|cmd, side, _| (!(cmd == "new" && side == "base")).then_some(0.1));
    let s = run(&runner, &["old", "new"], 3, 1);
    assert_eq!(s.dropped.len(), 1);
    assert_eq!(s.dropped[0].benchmark, "startup/new");
    assert!(
        s.dropped[0]
            .reason
            .starts_with("base warm-up: exited with status 1")
    );
    assert!(s.pairs.iter().all(|p| p.benchmark == "startup/old"));
}

#[test]
fn a_benchmark_that_keeps_failing_is_dropped_after_three_void_pairs() {
    let runner = Scripted::new(
        // Fine during warm-up (first 4 calls), then "flaky" always fails.
        |cmd, _, n| (n < 4 || cmd != "flaky").then_some(0.1),
    );
    let s = run(&runner, &["ok", "flaky"], 10, 3);
    assert_eq!(
        s.pairs
            .iter()
            .filter(|p| p.benchmark == "startup/flaky")
            .count(),
        3
    );
    assert_eq!(
        s.pairs
            .iter()
            .filter(|p| p.benchmark == "startup/ok")
            .count(),
        10
    );
    assert_eq!(s.dropped[0].reason, "3 consecutive failed pairs");
}

#[test]
fn the_time_budget_cuts_rounds_only_after_the_minimum() {
    let runner = Scripted::new(|_, _, _| Some(0.1));
    let mut s = sampling(4);
    s.max_rounds = 50;
    s.time_budget = Duration::from_nanos(1);
    let out = sample_with(&runner, &benches(&["a"]), &s, 1);
    assert_eq!(out.rounds, 4);
    assert_eq!(out.stopped_by, StopReason::TimeBudget);
}

/// A head that runs out of time while its base finishes is a slowdown, not a broken
/// benchmark: the warm-up keeps it, every pair counts at the lower bound, the limit drops
/// to ten times the longest finished run, and the analysis flags it (issue: "a head run that
/// times out voids its pair").
#[test]
fn a_side_that_times_out_is_evidence_not_a_void_pair() {
    let runner = Scripted::new(|cmd, side, _| {
        Some(if cmd == "hangs" && side == "head" {
            30.0
        } else {
            0.2
        })
    });
    let s = run(&runner, &["hangs", "fine"], 10, 4);
    assert!(s.dropped.is_empty(), "{:?}", s.dropped);
    let hangs: Vec<_> = s
        .pairs
        .iter()
        .filter(|p| p.benchmark == "startup/hangs")
        .collect();
    assert_eq!(hangs.len(), 10);
    for p in &hangs {
        let c = p.censored.expect("censored");
        assert_eq!(c.side, Side::Head);
        // 0.2 s × (the 2 s limit / 0.2 s): the limit itself, for a whole-process time.
        assert!((c.value - 2.0).abs() < 1e-9, "{c:?}");
        assert_eq!(p.values(), Some((0.2, c.value)));
        assert!(
            p.error
                .as_ref()
                .unwrap()
                .starts_with("head: timed out after")
        );
    }
    let log = runner.log.borrow();
    let limits = runner.limits.borrow();
    let hang_limits: Vec<_> = log
        .iter()
        .zip(limits.iter())
        .filter(|((cmd, _), _)| cmd == "hangs")
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(hang_limits[..2], [Duration::from_secs(5); 2], "warm-up");
    assert!(
        hang_limits[2..]
            .iter()
            .all(|l| *l == Duration::from_secs(2)),
        "ten times the longest finished run (0.2 s) after the first timeout: {hang_limits:?}"
    );
    let thresholds = crate::config::Thresholds {
        min_effect_percent: 2.0,
        alpha: 0.05,
        calibration: crate::config::CalibrationMode::Auto,
    };
    let out = crate::report::analysis::compare(
        &benches(&["hangs", "fine"]),
        &s,
        &thresholds,
        &Default::default(),
    );
    assert_eq!(
        out[0].verdict,
        crate::stats::Verdict::Regressed,
        "{:?}",
        out[0]
    );
    assert_eq!(out[0].void_pairs, 0);
    assert_eq!(
        out[0].timed_out,
        Some(crate::report::TimedOut { base: 0, head: 10 })
    );
    assert_eq!(out[1].timed_out, None);
}

/// Only a timed benchmark's timeout is evidence: both sides timing out, or a memory
/// benchmark timing out, still void the pair.
#[test]
fn timeouts_on_both_sides_or_of_a_memory_benchmark_void_the_pair() {
    let runner = Scripted::new(|cmd, side, n| {
        Some(match (cmd, side) {
            ("both", _) if n >= 4 => 30.0,
            ("memory", "head") => 30.0,
            _ => 0.2,
        })
    });
    let mut planned = benches(&["both"]);
    planned.push(Benchmark::new(
        Layer::Memory,
        "memory",
        Metric::PeakRss,
        "bytes",
        vec!["memory".into()],
    ));
    let s = sample_with(&runner, &planned, &sampling(6), 2);
    assert!(s.pairs.iter().all(|p| p.censored.is_none()));
    let dropped: Vec<_> = s.dropped.iter().map(|d| d.benchmark.as_str()).collect();
    assert!(dropped.contains(&"startup/both"), "{:?}", s.dropped);
    assert!(dropped.contains(&"memory/memory"), "{:?}", s.dropped);
}

#[test]
fn the_looks_share_alpha_by_the_power_spending_function() {
    let sampled = |plan: Vec<u32>| Sampled {
        seed: 0,
        rounds: 40,
        looks: 5,
        plan,
        stopped_by: StopReason::MaxRounds,
        pairs: vec![],
        dropped: vec![],
        shares: None,
    };
    let s = sampled(looks(&Sampling {
        min_rounds: 8,
        max_rounds: 40,
        ..sampling(8)
    }));
    assert_eq!(s.plan, [8, 12, 18, 27, 40]);
    // Each look's share at the round it comes after (0-based rounds 7, 11, …).
    let shares: Vec<f64> = s.plan.iter().map(|&n| s.alpha_share(n - 1)).collect();
    assert!(
        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-12,
        "{shares:?}"
    );
    assert!((shares[0] - 0.04).abs() < 1e-12, "{shares:?}");
    assert!((shares[4] - (1.0 - (27.0f64 / 40.0).powi(2))).abs() < 1e-12);
    assert!(shares.windows(2).all(|w| w[0] < w[1]), "{shares:?}");
    // A time budget that ends sampling after round 20 spends the next look's share (27).
    assert_eq!(s.alpha_share(19), shares[3]);
    assert_eq!(s.alpha_share(0), shares[0]);
    // Reports from before have no plan: an equal split.
    assert_eq!(sampled(vec![]).alpha_share(39), 0.2);
    // A single look spends all of α.
    let one = Sampled {
        looks: 1,
        ..sampled(vec![10])
    };
    assert_eq!(one.alpha_share(9), 1.0);
}

#[test]
fn a_look_just_before_the_last_is_left_out() {
    let plan = |min_rounds, max_rounds| {
        looks(&Sampling {
            min_rounds,
            max_rounds,
            ..sampling(min_rounds)
        })
    };
    assert_eq!(plan(8, 40), [8, 12, 18, 27, 40]);
    // 27 → 28 would give the last look 0.07 of α: 27 is left out.
    assert_eq!(plan(8, 28), [8, 12, 18, 28]);
    assert_eq!(plan(10, 11), [11]);
    assert_eq!(plan(10, 10), [10]);
    // --calibrate's 160 rounds: 140 is left out, 93 → 160 stays.
    let long = plan(8, 160);
    assert_eq!(long[long.len() - 2..], [93, 160]);
}
