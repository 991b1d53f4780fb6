//! Pins the PR comment and the terminal table for a fixed report (insta snapshots).

use benchvm_agent::bench::{Benchmark, Layer, Measurement, Metric};
use benchvm_agent::config::{Sampling, Thresholds};
use benchvm_agent::layers::importtime::ImportBreakdown;
use benchvm_agent::machine::Machine;
use benchvm_agent::measure::scheduler::{Dropped, Order, PairRecord, StopReason};
use benchvm_agent::report::{
    Change, Comparison, Explained, ImportTime, Quality, Report, Revision, SCHEMA_VERSION,
    SamplingSummary, Selection, Summary, Tool, render,
};
use benchvm_agent::spans::{Cache, Span};
use benchvm_agent::stats::Verdict;

fn comparison(
    layer: Layer,
    name: &str,
    unit: &str,
    base: f64,
    head: f64,
    ci: (f64, f64),
    verdict: Verdict,
) -> Comparison {
    Comparison {
        benchmark: format!("{}/{name}", layer.name()),
        layer,
        name: name.into(),
        unit: unit.into(),
        pairs: 12,
        void_pairs: 0,
        base_median: Some(base),
        head_median: Some(head),
        change: Some(Change {
            estimate_percent: (head / base - 1.0) * 100.0,
            ci_low_percent: ci.0,
            ci_high_percent: ci.1,
            confidence: 0.9546,
        }),
        p_regressed: Some(0.5),
        p_improved: Some(0.5),
        q_regressed: Some(0.6),
        q_improved: Some(0.6),
        verdict,
        note: None,
        min_effect_percent: None,
        timed_out: None,
    }
}

fn report() -> Report {
    let comparisons = vec![
        comparison(
            Layer::Startup,
            "textkit --version",
            "s",
            0.0452,
            0.0311,
            (-32.0, -29.5),
            Verdict::Improved,
        ),
        comparison(
            Layer::Startup,
            "import textkit",
            "s",
            0.0398,
            0.0401,
            (-0.6, 1.4),
            Verdict::NoChange,
        ),
        comparison(
            Layer::Micro,
            "bench_text.time_dedupe",
            "s",
            2.1e-3,
            0.9e-3,
            (-58.0, -55.1),
            Verdict::Improved,
        ),
        comparison(
            Layer::Micro,
            "bench_text.time_normalize",
            "s",
            310e-6,
            392e-6,
            (24.0, 28.9),
            Verdict::Regressed,
        ),
        comparison(
            Layer::Micro,
            "bench_text.track_vocab",
            "words",
            1234.0,
            1234.0,
            (0.0, 0.0),
            Verdict::NoChange,
        ),
        comparison(
            Layer::Micro,
            "bench_io.time_read",
            "s",
            1.2e-3,
            1.21e-3,
            (-3.5, 4.9),
            Verdict::Inconclusive,
        ),
        comparison(
            Layer::Integration,
            "analyze corpus",
            "s",
            0.61,
            0.55,
            (-10.8, -8.9),
            Verdict::Improved,
        ),
        comparison(
            Layer::Memory,
            "analyze corpus",
            "bytes",
            31_457_280.0,
            31_600_000.0,
            (-0.2, 0.9),
            Verdict::NoChange,
        ),
    ];
    let benchmarks: Vec<Benchmark> = comparisons
        .iter()
        .map(|c| Benchmark::new(c.layer, &c.name, Metric::WallTime, &c.unit, vec![]))
        .chain([Benchmark::new(
            Layer::Micro,
            "bench_io.time_broken",
            Metric::Reported,
            "s",
            vec![],
        )])
        .collect();
    let m = |v: f64| Measurement {
        value: v,
        wall_s: v,
        user_s: v / 2.0,
        sys_s: 0.0,
        max_rss_bytes: 1 << 20,
    };
    Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "benchvm-agent".into(),
            version: "0.0.0-test".into(),
        },
        repository: "/tmp/textkit".into(),
        base: Revision {
            reference: "main".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
        },
        head: Revision {
            reference: "perf/speedups".into(),
            commit: "fedcba9876543210fedcba9876543210fedcba98".into(),
        },
        machine: Machine {
            hostname: "bench-1".into(),
            cpu_model: Some("Test CPU @ 2.0GHz".into()),
            cores: 4,
            kernel: Some("6.1.0".into()),
            os: Some("Debian GNU/Linux 12".into()),
            memory_bytes: Some(16 << 30),
            governor: None,
            landlock_abi: Some(4),
            mount_namespace: true,
        },
        python: Some("Python 3.11.7".into()),
        seed: 42,
        sampling: SamplingSummary {
            config: Sampling {
                warmups: 1,
                min_rounds: 10,
                max_rounds: 16,
                time_budget: std::time::Duration::from_secs(360),
                timeout: std::time::Duration::from_secs(60),
                seed: None,
                fork: true,
                repeat: 5,
                pin_cpu: false,
                lockstep: false,
            },
            rounds: 12,
            looks: 1,
            plan: vec![],
            stopped_by: StopReason::TimeBudget,
        },
        thresholds: Thresholds {
            min_effect_percent: 2.0,
            alpha: 0.05,
            calibration: benchvm_agent::config::CalibrationMode::Auto,
        },
        fail_on_regression: true,
        benchmarks,
        samples: vec![PairRecord {
            benchmark: "startup/textkit --version".into(),
            round: 0,
            order: Order::HeadFirst,
            base: Some(m(0.0452)),
            head: Some(m(0.0311)),
            error: None,
            censored: None,
        }],
        dropped: vec![Dropped {
            benchmark: "micro/bench_io.time_broken".into(),
            reason: "head warm-up: exited with status 1: ValueError: <bad> | input".into(),
            skipped: false,
        }],
        summary: Summary::of(&comparisons, 1),
        selection: None,
        shard: None,
        calibration: None,
        comparisons,
        importtime: Some(ImportTime {
            module: "textkit".into(),
            runs_per_side: 5,
            modules: vec![
                ImportBreakdown {
                    module: "textkit".into(),
                    base_self_us: Some(310.0),
                    base_cumulative_us: Some(21_000.0),
                    head_self_us: Some(305.0),
                    head_cumulative_us: Some(7_400.0),
                },
                ImportBreakdown {
                    module: "textkit.tables".into(),
                    base_self_us: Some(13_500.0),
                    base_cumulative_us: Some(13_500.0),
                    head_self_us: None,
                    head_cumulative_us: None,
                },
            ],
        }),
        quality: vec![Quality {
            benchmark: "integration/analyze corpus".into(),
            base: serde_json::from_str(r#"{"documents": 40, "tokens": 51234}"#).unwrap(),
            head: serde_json::from_str(r#"{"documents": 40, "tokens": 51234}"#).unwrap(),
            error: None,
        }],
        spans: vec![
            Span {
                name: "checkout".into(),
                start_s: 0.0,
                duration_s: 0.42,
                cache: Some(Cache::Warm),
            },
            Span {
                name: "install base".into(),
                start_s: 0.42,
                duration_s: 3.1,
                cache: Some(Cache::Cold),
            },
            Span {
                name: "measure".into(),
                start_s: 3.6,
                duration_s: 212.0,
                cache: None,
            },
        ],
    }
}

#[test]
fn markdown_comment() {
    // Mixed: improved, regressed, unchanged, inconclusive and one failed benchmark.
    insta::assert_snapshot!("markdown_comment", render::markdown(&report()));
}

/// `report()` with every comparison given `verdict` and a change of `percent`, nothing
/// dropped; the summary follows.
fn uniform(verdict: Verdict, percent: f64) -> Report {
    let mut r = report();
    r.dropped.clear();
    r.benchmarks
        .retain(|b| b.id != "micro/bench_io.time_broken");
    for c in &mut r.comparisons {
        c.verdict = verdict;
        c.head_median = c.base_median.map(|b| b * (1.0 + percent / 100.0));
        c.change = Some(Change {
            estimate_percent: percent,
            ci_low_percent: percent - 1.0,
            ci_high_percent: percent + 1.0,
            confidence: 0.9546,
        });
    }
    r.summary = Summary::of(&r.comparisons, 0);
    r
}

#[test]
fn markdown_all_improved() {
    insta::assert_snapshot!(render::markdown(&uniform(Verdict::Improved, -20.0)));
}

#[test]
fn markdown_nothing_changed() {
    insta::assert_snapshot!(render::markdown(&uniform(Verdict::NoChange, 0.2)));
}

#[test]
fn markdown_failures() {
    let mut r = report();
    r.dropped.push(Dropped {
        benchmark: "integration/analyze corpus".into(),
        reason: "base: timed out after 60 s".into(),
        skipped: false,
    });
    r.comparisons
        .retain(|c| c.benchmark != "integration/analyze corpus");
    let c = r
        .comparisons
        .iter_mut()
        .find(|c| c.name == "bench_io.time_read")
        .unwrap();
    c.pairs = 0;
    c.void_pairs = 12;
    c.base_median = None;
    c.head_median = None;
    c.change = None;
    c.verdict = Verdict::Inconclusive;
    c.note = Some("no valid pairs".into());
    r.summary = Summary::of(&r.comparisons, r.dropped.len());
    insta::assert_snapshot!(render::markdown(&r));
}

#[test]
fn markdown_selective_run_with_skipped_benchmarks() {
    let mut r = uniform(Verdict::NoChange, 0.1);
    r.comparisons
        .retain(|c| c.layer != Layer::Micro || c.name == "bench_text.time_dedupe");
    r.selection = Some(Selection {
        ran: r.comparisons.len() as u32,
        skipped: vec![
            Explained {
                benchmark: "micro/bench_text.time_normalize".into(),
                reason: "no block it covers changed".into(),
            },
            Explained {
                benchmark: "micro/bench_io.time_read".into(),
                reason: "no block it covers changed; its data files are unchanged".into(),
            },
        ],
        hotfiles_changed: vec!["textkit/_speedups.py".into()],
        ran_because: vec![Explained {
            benchmark: "micro/bench_text.time_dedupe".into(),
            reason: "`dedupe` of src/textkit/dedupe.py changed".into(),
        }],
        fallback: None,
    });
    r.summary = Summary::of(&r.comparisons, 0);
    insta::assert_snapshot!(render::markdown(&r));
}

#[test]
fn markdown_selective_run_that_measured_nothing() {
    let mut r = uniform(Verdict::NoChange, 0.1);
    let skipped = r
        .comparisons
        .iter()
        .map(|c| Explained {
            benchmark: c.benchmark.clone(),
            reason: "none of the 9 block(s) it covers in 5 file(s) changed".into(),
        })
        .collect();
    r.comparisons.clear();
    r.samples.clear();
    r.selection = Some(Selection {
        ran: 0,
        skipped,
        hotfiles_changed: vec![],
        ran_because: vec![],
        fallback: None,
    });
    r.summary = Summary::of(&r.comparisons, 0);
    r.summary.verdict = Verdict::NoChange;
    let md = render::markdown(&r);
    assert!(md.contains("No change: the change cannot affect any benchmark"));
    insta::assert_snapshot!(md);
}

#[test]
fn markdown_selective_run_that_fell_back_to_everything() {
    let mut r = uniform(Verdict::NoChange, 0.1);
    r.selection = Some(Selection {
        ran: r.comparisons.len() as u32,
        skipped: vec![],
        hotfiles_changed: vec![],
        ran_because: vec![],
        fallback: Some("install coverage.py for the survey: exited with status 2".into()),
    });
    insta::assert_snapshot!(render::markdown(&r));
}

/// 400 benchmarks with long names: far over GitHub's limit; one regression at the end.
fn huge() -> Report {
    let mut r = report();
    let mut template = r.comparisons[2].clone();
    template.verdict = Verdict::NoChange;
    for i in 0..400 {
        let mut c = template.clone();
        c.name = format!(
            "bench_generated.time_a_rather_long_benchmark_name_number_{i:04}_with_parameters_(1000, 'utf-8')"
        );
        c.benchmark = format!("micro/{}", c.name);
        r.comparisons.push(c);
    }
    let mut last = r.comparisons[3].clone();
    last.name = "bench_generated.time_the_last_one_regressed".into();
    last.benchmark = format!("micro/{}", last.name);
    r.comparisons.push(last);
    r.summary = Summary::of(&r.comparisons, 1);
    r
}

#[test]
fn an_over_long_comment_drops_details_first_then_rows_and_says_so() {
    let r = huge();
    let full = render::markdown(&r);
    assert!(
        full.encode_utf16().count() > render::COMMENT_LIMIT,
        "the case is over the limit"
    );
    let fitted = render::markdown_within(&r, render::COMMENT_LIMIT);
    let len = fitted.encode_utf16().count();
    assert!(len <= render::COMMENT_LIMIT, "{len}");
    assert!(fitted.starts_with(render::MARKER));
    assert!(
        fitted.contains("time_the_last_one_regressed"),
        "a regression is never cut away"
    );
    // What survived, and the note: headings, details and notes, not the 400 rows.
    let outline: Vec<&str> = fitted
        .lines()
        .filter(|l| l.starts_with('#') || l.starts_with("<details") || l.starts_with('>'))
        .collect();
    insta::assert_snapshot!(outline.join("\n"));

    // Just over the limit: only the lowest-priority detail (the timings) goes.
    let small = report();
    let whole = render::markdown(&small);
    let limit = whole.encode_utf16().count() - 10;
    let fitted = render::markdown_within(&small, limit);
    assert!(fitted.encode_utf16().count() <= limit);
    assert!(!fitted.contains("Pipeline timings"));
    assert!(fitted.contains("Machine and sampling") && fitted.contains("```mermaid"));
    assert!(fitted.contains("left out the pipeline timings"), "{fitted}");
    // Within the limit: unchanged.
    assert_eq!(
        render::markdown_within(&small, render::COMMENT_LIMIT),
        whole
    );
}

#[test]
fn terminal_table() {
    insta::assert_snapshot!("terminal_table", render::terminal(&report()));
}

#[test]
fn the_report_round_trips_through_json() {
    let r = report();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(Report::from_json(&json, "test").unwrap(), r);
}

#[test]
fn a_newer_major_schema_is_refused_with_a_clear_message() {
    let mut v = serde_json::to_value(report()).unwrap();
    v["schema_version"] = "2.0".into();
    let err = Report::from_json(&v.to_string(), "report.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("report schema 2.0 is newer"), "{err}");
    let mut v = serde_json::to_value(report()).unwrap();
    v["schema_version"] = "1.7".into();
    assert!(
        Report::from_json(&v.to_string(), "report.json").is_ok(),
        "a newer minor is fine"
    );
}

/// Issue 16: nested phases (`measure: micro runs` inside `measure`) were added to the
/// total, so a 216 s run said "416 s in all".
#[test]
fn the_pipeline_total_is_wall_time_not_the_sum_of_nested_phases() {
    let mut r = report();
    r.spans.push(Span {
        name: "measure: micro runs".into(),
        start_s: 3.6,
        duration_s: 200.0,
        cache: None,
    });
    let md = render::markdown(&r);
    assert!(md.contains("Pipeline timings (216 s in all)"), "{md}");
}

/// A host's noise floor above δ and a side that timed out both reach the comment: the
/// raised δ in the row and a warning naming it; the timeouts as evidence, under the table.
#[test]
fn markdown_noise_floors_and_timeouts() {
    let mut r = report();
    let c = r
        .comparisons
        .iter_mut()
        .find(|c| c.name == "bench_io.time_read")
        .unwrap();
    c.min_effect_percent = Some(7.5);
    c.verdict = Verdict::NoChange;
    let c = r
        .comparisons
        .iter_mut()
        .find(|c| c.name == "analyze corpus")
        .unwrap();
    c.timed_out = Some(benchvm_agent::report::TimedOut { base: 0, head: 3 });
    r.calibration = Some(benchvm_agent::report::CalibrationRun {
        a_a_run: false,
        calibrated_now: vec!["micro/bench_io.time_read".into()],
        above_delta: [("micro/bench_io.time_read".to_owned(), 7.5)].into(),
    });
    r.summary = Summary::of(&r.comparisons, r.dropped.len());
    let md = render::markdown(&r);
    assert!(md.contains("δ 7.5 %)"), "{md}");
    assert!(
        md.contains("Too noisy on this host to detect δ = 2 %: 1 benchmark(s)"),
        "{md}"
    );
    assert!(md.contains("an A/A of the base ran first"), "{md}");
    assert!(
        md.contains("`analyze corpus`: head timed out in 3 pair(s) where base finished"),
        "{md}"
    );
    insta::assert_snapshot!(md);
}

/// The issue's hostile name, everywhere a name, a reason, a unit or a ref can appear.
const HOSTILE: &str = "evil` @octo-org/security <!-- hidden --> [click](https://evil.example) <img src=x>\n::error::pwned";

/// What markdown would make live: `text` with its inline code spans (as CommonMark reads
/// them: a run of backticks closed by a run of the same length) taken out.
fn outside_code_spans(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + run..];
        let fence = "`".repeat(run);
        // The closing run: the same length, not part of a longer run.
        let mut close = None;
        let mut from = 0;
        while let Some(i) = after[from..].find(&fence) {
            let at = from + i;
            let longer = after[at + run..].starts_with('`');
            if !longer && (at == 0 || !after[..at].ends_with('`')) {
                close = Some(at);
                break;
            }
            from = at + after[at..].chars().take_while(|&c| c == '`').count();
        }
        match close {
            Some(at) => rest = &after[at + run..],
            None => {
                out.push_str(&rest[start..start + run]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_hostile_name_is_inert_in_the_comment_and_the_terminal() {
    let mut r = report();
    r.head.reference = HOSTILE.into();
    for c in &mut r.comparisons {
        c.name = format!("{HOSTILE} {}", c.name);
        c.benchmark = format!("{}/{HOSTILE} {}", c.layer.name(), c.name);
        c.unit = if c.unit == "s" {
            c.unit.clone()
        } else {
            HOSTILE.into()
        };
    }
    for d in &mut r.dropped {
        d.reason = HOSTILE.into();
    }
    r.quality[0].base.insert(HOSTILE.into(), 1.into());
    if let Some(it) = &mut r.importtime {
        it.module = HOSTILE.into();
        it.modules[0].module = HOSTILE.into();
    }
    let md = render::markdown(&r);
    let live = outside_code_spans(&md);
    for needle in [
        "@octo",
        "<!-- hidden",
        "](https://evil",
        "<img",
        "::error::pwned",
    ] {
        assert!(!live.contains(needle), "{needle} is live:\n{live}");
    }
    for line in md.lines() {
        assert!(!line.starts_with("::"), "a workflow command line: {line}");
        if line.starts_with('|') {
            // Every table row keeps its cells: as many unescaped pipes as the header's.
            let cells = line.replace("\\|", "").matches('|').count();
            assert!(
                cells == 6 || cells == 4 || cells == 7,
                "{cells} cells: {line}"
            );
        }
    }
    // The mermaid block: one x-axis line whose labels hold no quote, bracket or newline.
    let axis = md
        .lines()
        .find(|l| l.trim_start().starts_with("x-axis"))
        .unwrap();
    let labels = axis
        .trim()
        .trim_start_matches("x-axis [")
        .trim_end_matches(']');
    assert!(!labels.contains('[') && !labels.contains(']'), "{axis}");
    assert_eq!(labels.matches('"').count() % 2, 0, "{axis}");

    let term = render::terminal(&r);
    assert!(!term.contains("\n::error"), "{term}");
    assert!(!term.contains('\u{1b}'), "{term}");
}
