//! The Wilcoxon signed-rank test of a location shift.

use super::Differences;
use super::normal::{lower_tail, upper_tail};
use super::ranks::AbsRanks;
use super::signrank::{EXACT_LIMIT, SignedRankDistribution, null_mean, null_variance};

/// Direction of the alternative hypothesis about the shift of `d − mu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    /// H1: the shift is greater than `mu` (head slower by more than `mu`).
    Greater,
    /// H1: the shift is less than `mu`.
    Less,
    /// H1: the shift differs from `mu`.
    TwoSided,
}

/// Result of [`signed_rank_test`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignedRank {
    /// V: the sum of the (mid-)ranks of |d_i − mu| over the positive d_i − mu.
    pub statistic: f64,
    /// P-value for the requested alternative.
    pub p_value: f64,
    /// Whether the p-value comes from the exact null distribution rather than
    /// the normal approximation.
    pub exact: bool,
}

/// Wilcoxon signed-rank test of the differences shifted by `mu` (tests `d − mu`).
///
/// Method: Wilcoxon (1945), as presented in Hollander, Wolfe & Chicken,
/// *Nonparametric Statistical Methods*, 3rd ed., 2014, §3.1. It reproduces
/// R's `wilcox.test(d, mu = mu, alternative = ..., exact = NULL, correct = TRUE)`:
///
/// * values with `d_i − mu == 0` are dropped, as R does;
/// * with fewer than 50 remaining values and neither zeros nor ties among
///   `|d_i − mu|`, the p-value is exact (the null distribution of V by
///   dynamic programming over subset sums, counts / 2^n);
/// * otherwise it uses the normal approximation with the tie-corrected
///   variance and a continuity correction of ½ towards the null.
///
/// Deviation from R: when every difference equals `mu`, R's two-sided p-value
/// is NaN (0/0); here it is 1, like the one-sided ones — there is no evidence
/// of any shift. A non-finite `mu` (or a `d_i − mu` that overflows) yields a
/// NaN statistic and p-value instead of a panic.
pub fn signed_rank_test(d: &Differences, mu: f64, alternative: Alternative) -> SignedRank {
    let shifted: Vec<f64> = d.as_slice().iter().map(|&x| x - mu).collect();
    if shifted.iter().any(|x| !x.is_finite()) {
        return SignedRank {
            statistic: f64::NAN,
            p_value: f64::NAN,
            exact: false,
        };
    }
    let nonzero: Vec<f64> = shifted.iter().copied().filter(|&x| x != 0.0).collect();
    let had_zero = nonzero.len() < shifted.len();
    let ranks = AbsRanks::of(&nonzero);
    let statistic = ranks.positive_rank_sum(&nonzero);
    let n = nonzero.len();
    if n < EXACT_LIMIT && !had_zero && !ranks.has_ties() {
        SignedRank {
            statistic,
            p_value: exact_p_value(statistic, n, alternative),
            exact: true,
        }
    } else {
        SignedRank {
            statistic,
            p_value: approximate_p_value(statistic, n, ranks.tie_term(), alternative),
            exact: false,
        }
    }
}

/// P-value of V under the exact null distribution for `n` distinct non-zero values.
/// The two-sided value doubles the tail on the side V falls on, capped at 1.
fn exact_p_value(v: f64, n: usize, alternative: Alternative) -> f64 {
    let dist = SignedRankDistribution::new(n);
    match alternative {
        Alternative::Greater => dist.sf(v),
        Alternative::Less => dist.cdf(v),
        Alternative::TwoSided => {
            let tail = if v > null_mean(n) {
                dist.sf(v)
            } else {
                dist.cdf(v)
            };
            (2.0 * tail).min(1.0)
        }
    }
}

/// Normal-approximation p-value with continuity correction.
///
/// The correction moves V by ½ towards its null mean (for the two-sided test:
/// towards it from whichever side V is on), compensating for approximating a
/// discrete distribution by a continuous one.
fn approximate_p_value(v: f64, n: usize, tie_term: f64, alternative: Alternative) -> f64 {
    if n == 0 {
        // Every value was a zero: no signed ranks, no evidence against H0.
        return 1.0;
    }
    let centred = v - null_mean(n);
    let correction = match alternative {
        Alternative::Greater => 0.5,
        Alternative::Less => -0.5,
        Alternative::TwoSided => 0.5 * sign(centred),
    };
    let z = (centred - correction) / null_variance(n, tie_term).sqrt();
    match alternative {
        Alternative::Greater => upper_tail(z),
        Alternative::Less => lower_tail(z),
        Alternative::TwoSided => (2.0 * lower_tail(z).min(upper_tail(z))).min(1.0),
    }
}

/// Sign with sign(0) = 0 (unlike `f64::signum`, which gives ±1 for ±0).
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diffs(values: &[f64]) -> Differences {
        Differences::new(values.to_vec()).unwrap()
    }

    /// P(V ≥ v) by enumerating all 2^n sign patterns of the ranks 1..n.
    fn brute_force_sf(n: usize, v: f64) -> f64 {
        let hits = (0u32..1 << n)
            .filter(|mask| {
                let sum: usize = (0..n).filter(|i| mask >> i & 1 == 1).map(|i| i + 1).sum();
                sum as f64 >= v
            })
            .count();
        hits as f64 / f64::from(1u32 << n)
    }

    #[test]
    fn exact_matches_enumeration() {
        let d = diffs(&[0.8, -0.3, 1.2, 0.5, -0.1, 0.9, 0.05, -0.7]);
        let r = signed_rank_test(&d, 0.0, Alternative::Greater);
        assert!(r.exact);
        // Ranks of |d|: 0.05→1, 0.1→2, 0.3→3, 0.5→4, 0.7→5, 0.8→6, 0.9→7, 1.2→8.
        assert_eq!(r.statistic, 1.0 + 4.0 + 6.0 + 7.0 + 8.0);
        assert_eq!(r.p_value, brute_force_sf(8, r.statistic));
        let less = signed_rank_test(&d, 0.0, Alternative::Less);
        assert_eq!(less.p_value, 1.0 - brute_force_sf(8, r.statistic + 1.0));
    }

    #[test]
    fn mu_shifts_the_data() {
        let d = diffs(&[0.1, 0.2, 0.3]);
        let r = signed_rank_test(&d, 0.25, Alternative::Greater);
        // d − mu = (−0.15, −0.05, 0.05): ranks 3, 1.5, 1.5 — a tie, so approximate.
        assert!(!r.exact);
        assert_eq!(r.statistic, 1.5);
    }

    #[test]
    fn all_zero_gives_no_evidence() {
        let d = diffs(&[0.0, 0.0, 0.0]);
        for alternative in [
            Alternative::Greater,
            Alternative::Less,
            Alternative::TwoSided,
        ] {
            let r = signed_rank_test(&d, 0.0, alternative);
            assert_eq!(r.statistic, 0.0);
            assert_eq!(r.p_value, 1.0);
            assert!(!r.exact);
        }
    }

    #[test]
    fn single_value() {
        let r = signed_rank_test(&diffs(&[0.3]), 0.0, Alternative::TwoSided);
        assert!(r.exact);
        assert_eq!(r.statistic, 1.0);
        assert_eq!(r.p_value, 1.0);
        let r = signed_rank_test(&diffs(&[0.3]), 0.0, Alternative::Greater);
        assert_eq!(r.p_value, 0.5);
    }

    #[test]
    fn non_finite_mu_is_nan_not_panic() {
        let r = signed_rank_test(&diffs(&[0.3, 0.1]), f64::NAN, Alternative::Less);
        assert!(r.p_value.is_nan());
        let r = signed_rank_test(&diffs(&[f64::MAX]), -f64::MAX, Alternative::Less);
        assert!(r.statistic.is_nan());
    }

    #[test]
    fn sign_of_zero_is_zero() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-0.0), 0.0);
        assert_eq!(sign(-2.0), -1.0);
        assert_eq!(sign(3.0), 1.0);
    }
}
