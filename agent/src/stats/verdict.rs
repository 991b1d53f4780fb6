//! Turning a benchmark's statistics into one of four verdicts.

/// The outcome for one benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Head is slower by more than the threshold, with FDR-controlled evidence.
    Regressed,
    /// Head is faster by more than the threshold, with FDR-controlled evidence.
    Improved,
    /// The whole confidence interval lies within ±threshold: any change is
    /// smaller than what we care about (an equivalence statement).
    NoChange,
    /// Neither: the data cannot tell a relevant change from no relevant change.
    Inconclusive,
}

impl Verdict {
    /// Human-readable label for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Regressed => "regressed",
            Self::Improved => "improved",
            Self::NoChange => "no change",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// The one decision rule (ARCHITECTURE §3). `lower`, `upper` and `threshold` are on
/// the log scale (threshold t = ln(1 + δ)); the q-values are the
/// Benjamini–Hochberg adjusted p-values of the one-sided minimum-effect tests
/// (H1: shift > +t for "regressed", H1: shift < −t for "improved").
///
/// Regressed if `q_regressed ≤ alpha`; else improved if `q_improved ≤ alpha`;
/// else no change if `threshold > 0` and the interval lies strictly inside
/// (−threshold, threshold); else inconclusive. "No change" is thus an
/// interval-inclusion equivalence decision, in the spirit of the two
/// one-sided tests procedure (Schuirmann 1987, J. Pharmacokinet. Biopharm.
/// 15(6)). NaN inputs never satisfy a comparison, so they lead to
/// inconclusive rather than a confident verdict.
pub fn verdict(
    lower: f64,
    upper: f64,
    q_regressed: f64,
    q_improved: f64,
    threshold: f64,
    alpha: f64,
) -> Verdict {
    if q_regressed <= alpha {
        Verdict::Regressed
    } else if q_improved <= alpha {
        Verdict::Improved
    } else if threshold > 0.0 && -threshold < lower && upper < threshold {
        Verdict::NoChange
    } else {
        Verdict::Inconclusive
    }
}

/// A log-scale shift as a percentage change of the (geometric) timing:
/// (exp(x) − 1)·100. Computed with `exp_m1`, which keeps full precision for
/// the small shifts typical of benchmarks.
pub fn to_percent(log_shift: f64) -> f64 {
    log_shift.exp_m1() * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 0.019_802_627_296_179_712; // ln(1.02)

    #[test]
    fn labels() {
        assert_eq!(Verdict::Regressed.label(), "regressed");
        assert_eq!(Verdict::Improved.label(), "improved");
        assert_eq!(Verdict::NoChange.label(), "no change");
        assert_eq!(Verdict::Inconclusive.label(), "inconclusive");
    }

    #[test]
    fn serde_names() {
        assert_eq!(
            serde_json::to_string(&Verdict::NoChange).unwrap(),
            "\"no_change\""
        );
    }

    #[test]
    fn rule_order() {
        assert_eq!(verdict(0.03, 0.05, 0.01, 0.9, T, 0.05), Verdict::Regressed);
        // Regressed wins even if the improved q is also small.
        assert_eq!(verdict(-0.1, 0.1, 0.01, 0.01, T, 0.05), Verdict::Regressed);
        assert_eq!(verdict(-0.05, -0.03, 0.9, 0.05, T, 0.05), Verdict::Improved);
        assert_eq!(verdict(-0.01, 0.01, 0.9, 0.9, T, 0.05), Verdict::NoChange);
        assert_eq!(
            verdict(-0.01, 0.03, 0.9, 0.9, T, 0.05),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn no_change_needs_strict_inclusion_and_positive_threshold() {
        assert_eq!(verdict(-T, 0.0, 1.0, 1.0, T, 0.05), Verdict::Inconclusive);
        assert_eq!(verdict(0.0, T, 1.0, 1.0, T, 0.05), Verdict::Inconclusive);
        assert_eq!(
            verdict(0.0, 0.0, 1.0, 1.0, 0.0, 0.05),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn nan_is_inconclusive() {
        assert_eq!(
            verdict(f64::NAN, 0.0, f64::NAN, f64::NAN, T, 0.05),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn percent() {
        assert_eq!(to_percent(0.0), 0.0);
        assert!((to_percent(T) - 2.0).abs() < 1e-12);
        assert!((to_percent(-(2f64.ln())) + 50.0).abs() < 1e-12);
    }
}
