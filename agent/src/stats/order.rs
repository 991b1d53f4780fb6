//! Order statistics of one sample: quantiles by rank, and the distribution-free interval of
//! the median (the binomial argument, e.g. Conover, *Practical Nonparametric Statistics*,
//! 3rd ed., §3.2).

use statrs::distribution::{Binomial, DiscreteCDF};

/// The `f` quantile of `sorted` by nearest rank (index `round((n − 1)·f)`).
///
/// # Panics
/// When `sorted` is empty.
pub fn quantile(sorted: &[f64], f: f64) -> f64 {
    let n = sorted.len();
    sorted[((n - 1) as f64 * f).round() as usize]
}

/// Indices (0-based, into `n` sorted samples) of the order statistics that bound the median
/// with at least `level` confidence: the widest pair when `n` is too small.
pub fn median_interval(n: usize, level: f64) -> (usize, usize) {
    if n < 2 {
        return (0, n.saturating_sub(1));
    }
    let b = Binomial::new(0.5, n as u64).expect("valid");
    // P(X < k) on each side; pick the largest k with 1 - 2 P(X <= k - 1) >= level.
    let mut k = 0;
    for cand in 1..=n / 2 {
        if 1.0 - 2.0 * b.cdf(cand as u64 - 1) >= level {
            k = cand - 1;
        } else {
            break;
        }
    }
    (k, n - 1 - k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interval_widens_with_confidence_and_covers_all_for_few_samples() {
        assert_eq!(median_interval(5, 0.99), (0, 4));
        let (lo, hi) = median_interval(100, 0.99);
        assert!(lo > 30 && hi < 69 && lo + hi == 99, "{lo} {hi}");
        let (lo95, hi95) = median_interval(100, 0.95);
        assert!(
            lo95 > lo && hi95 < hi,
            "a lower level gives a narrower interval"
        );
    }

    #[test]
    fn quantiles_are_taken_by_nearest_rank() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&sorted, 0.25), 2.0);
        assert_eq!(quantile(&sorted, 0.75), 4.0);
        assert_eq!(quantile(&sorted, 1.0), 5.0);
    }
}
