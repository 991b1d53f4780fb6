//! The exact null distribution of the Wilcoxon signed-rank statistic.

/// Largest sample size for which the exact distribution is used, plus one.
/// Mirrors R's `wilcox.test` default `exact = n < 50`; it also keeps every
/// count below 2^49, so the counts and their partial sums are exact in `f64`.
pub(crate) const EXACT_LIMIT: usize = 50;

/// Null distribution of V = Σ ranks of the positive values, for `n` distinct
/// non-zero observations symmetric about 0: each of the 2^n sign patterns is
/// equally likely (Hollander, Wolfe & Chicken, *Nonparametric Statistical
/// Methods*, 3rd ed., 2014, §3.1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SignedRankDistribution {
    /// `counts[v]` = number of subsets of {1..n} whose sum is v, for v in 0..=M.
    counts: Vec<f64>,
    /// 2^n, the number of sign patterns.
    total: f64,
}

impl SignedRankDistribution {
    /// Counts subset sums by dynamic programming: adding rank r to every
    /// subset without it shifts the counts by r. O(n · M) with M = n(n+1)/2.
    /// Meant for `n < EXACT_LIMIT`; larger n loses exactness in the counts.
    pub fn new(n: usize) -> Self {
        let max = n * (n + 1) / 2;
        let mut counts = vec![0.0; max + 1];
        counts[0] = 1.0;
        for rank in 1..=n {
            let reachable = rank * (rank + 1) / 2;
            // Downwards, so each rank is used at most once per subset.
            for v in (rank..=reachable).rev() {
                counts[v] += counts[v - rank];
            }
        }
        let total = (0..n).fold(1.0, |acc: f64, _| acc * 2.0);
        Self { counts, total }
    }

    /// Largest attainable value of V, M = n(n+1)/2.
    pub fn max(&self) -> usize {
        self.counts.len() - 1
    }

    /// P(V ≤ v). Sums integer counts first so the only rounding is the final division.
    pub fn cdf(&self, v: f64) -> f64 {
        if v.is_nan() {
            return f64::NAN;
        }
        if v < 0.0 {
            return 0.0;
        }
        let last = (v.floor() as usize).min(self.max());
        self.counts[..=last].iter().sum::<f64>() / self.total
    }

    /// P(V ≥ v), summed directly rather than as 1 − cdf, so small upper-tail
    /// p-values keep full relative precision.
    pub fn sf(&self, v: f64) -> f64 {
        if v.is_nan() {
            return f64::NAN;
        }
        let first = v.ceil().max(0.0);
        if first > self.max() as f64 {
            return 0.0;
        }
        self.counts[first as usize..].iter().sum::<f64>() / self.total
    }

    /// Smallest v with P(V ≤ v) ≥ p, for p ≤ 1/2 (the lower quantile).
    ///
    /// The target is lowered by 10 machine epsilons so that a p that equals a
    /// cumulative probability up to rounding (e.g. α/2 computed as (1 − 0.95)/2)
    /// selects that value rather than the next one; R's `qsignrank` applies the
    /// same fuzz, and matching it matters because the CI bounds are order
    /// statistics picked by this index.
    pub fn lower_quantile(&self, p: f64) -> usize {
        let target = p - 10.0 * f64::EPSILON;
        let mut cumulative = 0.0;
        for (v, &count) in self.counts.iter().enumerate() {
            cumulative += count;
            if cumulative / self.total >= target {
                return v;
            }
        }
        self.max()
    }
}

/// E(V) = n(n+1)/4 under H0 (Hollander, Wolfe & Chicken, 3rd ed., §3.1).
pub(crate) fn null_mean(n: usize) -> f64 {
    let n = n as f64;
    n * (n + 1.0) / 4.0
}

/// Var(V) under H0 with mid-ranks: n(n+1)(2n+1)/24 − Σ(t³−t)/48, where the
/// tie term is [`AbsRanks::tie_term`](super::ranks::AbsRanks::tie_term)
/// (Hollander, Wolfe & Chicken, 3rd ed., §3.1).
pub(crate) fn null_variance(n: usize, tie_term: f64) -> f64 {
    let n = n as f64;
    n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - tie_term / 48.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_for_three_ranks() {
        // Subsets of {1,2,3}: sums 0,1,2,3,3,4,5,6.
        let dist = SignedRankDistribution::new(3);
        assert_eq!(dist.counts, vec![1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]);
        assert_eq!(dist.total, 8.0);
        assert_eq!(dist.max(), 6);
    }

    #[test]
    fn zero_ranks_is_a_point_mass() {
        let dist = SignedRankDistribution::new(0);
        assert_eq!(dist.cdf(0.0), 1.0);
        assert_eq!(dist.sf(0.0), 1.0);
        assert_eq!(dist.sf(1.0), 0.0);
    }

    #[test]
    fn counts_sum_to_two_to_the_n_and_are_symmetric() {
        for n in [1, 5, 20, 49] {
            let dist = SignedRankDistribution::new(n);
            assert_eq!(dist.counts.iter().sum::<f64>(), dist.total);
            let reversed: Vec<f64> = dist.counts.iter().rev().copied().collect();
            assert_eq!(dist.counts, reversed);
        }
    }

    #[test]
    fn tails() {
        let dist = SignedRankDistribution::new(3);
        assert_eq!(dist.cdf(-1.0), 0.0);
        assert_eq!(dist.cdf(0.0), 0.125);
        assert_eq!(dist.cdf(3.0), 0.625);
        assert_eq!(dist.cdf(3.5), 0.625);
        assert_eq!(dist.cdf(100.0), 1.0);
        assert_eq!(dist.sf(6.0), 0.125);
        assert_eq!(dist.sf(3.0), 0.625);
        assert_eq!(dist.sf(-2.0), 1.0);
        assert_eq!(dist.sf(7.0), 0.0);
        assert!(dist.cdf(f64::NAN).is_nan());
    }

    #[test]
    fn tiny_tail_keeps_precision() {
        let dist = SignedRankDistribution::new(40);
        assert_eq!(dist.sf(820.0), 1.0 / 2f64.powi(40));
    }

    #[test]
    fn lower_quantile_is_smallest_reaching_value() {
        let dist = SignedRankDistribution::new(3);
        assert_eq!(dist.lower_quantile(0.0), 0);
        assert_eq!(dist.lower_quantile(0.125), 0);
        assert_eq!(dist.lower_quantile(0.13), 1);
        assert_eq!(dist.lower_quantile(0.5), 3);
        // n = 10: P(V ≤ 8) = 25/1024 < 0.025 ≤ P(V ≤ 9) = 33/1024.
        assert_eq!(SignedRankDistribution::new(10).lower_quantile(0.025), 9);
    }

    #[test]
    fn lower_quantile_forgives_rounding_just_above_a_step() {
        let dist = SignedRankDistribution::new(3);
        assert_eq!(dist.lower_quantile(0.125 + 1e-16), 0);
        assert_eq!(dist.lower_quantile(0.125 + 3e-15), 1);
    }

    #[test]
    fn null_moments() {
        assert_eq!(null_mean(4), 5.0);
        assert_eq!(null_variance(4, 0.0), 7.5);
        assert_eq!(null_variance(2, 6.0), 1.25 - 0.125);
    }

    #[test]
    fn moments_match_the_distribution() {
        let n = 12;
        let dist = SignedRankDistribution::new(n);
        let mean: f64 = (0..=dist.max())
            .map(|v| v as f64 * dist.counts[v])
            .sum::<f64>()
            / dist.total;
        let var: f64 = (0..=dist.max())
            .map(|v| (v as f64 - mean).powi(2) * dist.counts[v])
            .sum::<f64>()
            / dist.total;
        assert!((mean - null_mean(n)).abs() < 1e-9);
        assert!((var - null_variance(n, 0.0)).abs() < 1e-9);
    }
}
