//! Numbers as people read them: values scaled to their unit, signed percentages, intervals
//! with their confidence level.

use crate::report::Comparison;
use crate::report::inert::label;

/// A percentage without a sign (δ, floors).
pub(super) fn unsigned(p: f64) -> String {
    format!("{p:.1} %")
}

/// A commit id as the comment shows it.
pub(super) fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// A sample value in its unit, scaled for reading.
pub fn value(v: Option<f64>, unit: &str) -> String {
    let Some(v) = v else { return "–".into() };
    match unit {
        "s" => {
            let (scaled, suffix) = if v >= 1.0 {
                (v, "s")
            } else if v >= 1e-3 {
                (v * 1e3, "ms")
            } else if v >= 1e-6 {
                (v * 1e6, "µs")
            } else {
                (v * 1e9, "ns")
            };
            format!("{} {suffix}", sig(scaled))
        }
        "bytes" => {
            let mib = v / (1024.0 * 1024.0);
            if mib >= 1.0 {
                format!("{} MiB", sig(mib))
            } else {
                format!("{} KiB", sig(v / 1024.0))
            }
        }
        other => format!("{} {}", sig(v), label(other)),
    }
}

/// Three significant digits, no exponent.
fn sig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(super) fn change(c: &Comparison) -> String {
    match c.change {
        None => "–".into(),
        Some(ch) => {
            // Each row's interval has the level its verdict used (ARCHITECTURE §3).
            let level = if ch.confidence < 1.0 {
                format!(" at {} %", level(ch.confidence))
            } else {
                String::new()
            };
            let delta = c
                .min_effect_percent
                .map_or(String::new(), |d| format!("; δ {}", unsigned(d)));
            format!(
                "{} ({} … {}{level}{delta})",
                percent(ch.estimate_percent),
                percent(ch.ci_low_percent),
                percent(ch.ci_high_percent)
            )
        }
    }
}

/// A confidence level in percent, with as many decimals as it takes to tell it from 100 %.
fn level(confidence: f64) -> String {
    let percent = confidence * 100.0;
    let gap = 100.0 - percent;
    let decimals = if gap >= 0.1 {
        1
    } else if gap >= 0.01 {
        2
    } else if gap >= 0.001 {
        3
    } else {
        4
    };
    format!("{percent:.decimals$}")
}

fn percent(p: f64) -> String {
    let sign = if p > 0.0 {
        "+"
    } else if p < 0.0 {
        "−"
    } else {
        "±"
    };
    format!("{sign}{:.1} %", p.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Layer;
    use crate::stats::Verdict;

    #[test]
    fn values_are_scaled_by_unit() {
        assert_eq!(value(Some(0.0451), "s"), "45.1 ms");
        assert_eq!(value(Some(2.5e-6), "s"), "2.50 µs");
        assert_eq!(value(Some(12.0), "s"), "12.0 s");
        assert_eq!(value(Some(150.0 * 1024.0 * 1024.0), "bytes"), "150 MiB");
        assert_eq!(value(Some(1000.0), "items"), "1000 items");
        assert_eq!(value(None, "s"), "–");
    }

    #[test]
    fn every_interval_says_its_level() {
        let mut c = crate::report::Comparison {
            benchmark: "micro/x".into(),
            layer: Layer::Micro,
            name: "x".into(),
            unit: "s".into(),
            pairs: 4,
            void_pairs: 0,
            base_median: Some(1.0),
            head_median: Some(1.1),
            change: Some(crate::report::Change {
                estimate_percent: 10.0,
                ci_low_percent: 5.0,
                ci_high_percent: 15.0,
                confidence: 0.875,
            }),
            p_regressed: None,
            p_improved: None,
            q_regressed: None,
            q_improved: None,
            verdict: Verdict::Inconclusive,
            note: None,
            min_effect_percent: None,
            timed_out: None,
        };
        assert_eq!(change(&c), "+10.0 % (+5.0 % … +15.0 % at 87.5 %)");
        c.change.as_mut().unwrap().confidence = 0.9512;
        assert_eq!(change(&c), "+10.0 % (+5.0 % … +15.0 % at 95.1 %)");
        c.change.as_mut().unwrap().confidence = 0.99994;
        assert_eq!(change(&c), "+10.0 % (+5.0 % … +15.0 % at 99.994 %)");
    }

    #[test]
    fn percentages_carry_a_sign() {
        assert_eq!(percent(12.34), "+12.3 %");
        assert_eq!(percent(-3.0), "−3.0 %");
        assert_eq!(percent(0.0), "±0.0 %");
    }
}
