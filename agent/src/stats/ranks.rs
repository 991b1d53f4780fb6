//! Mid-ranks of absolute values, the raw material of the signed-rank statistic.

/// Ranks of `|x_i|` with ties sharing the average of the ranks they span
/// ("mid-ranks"; Hollander, Wolfe & Chicken, *Nonparametric Statistical
/// Methods*, 3rd ed., 2014, §3.1 on ties), together with the size of every
/// tie group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AbsRanks {
    /// 1-based mid-rank of `|x_i|`, in the input order.
    pub ranks: Vec<f64>,
    /// Size of each group of equal `|x|` (groups of size 1 included).
    pub group_sizes: Vec<usize>,
}

impl AbsRanks {
    /// Mid-ranks of `|x|`. Values are compared exactly (`==`), as a tie is a
    /// property of the recorded numbers, not of some tolerance.
    pub fn of(x: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&a, &b| x[a].abs().total_cmp(&x[b].abs()));
        let mut ranks = vec![0.0; x.len()];
        let mut group_sizes = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let value = x[order[start]].abs();
            let end = start
                + order[start..]
                    .iter()
                    .take_while(|&&i| x[i].abs() == value)
                    .count();
            // Positions start..end hold 1-based ranks start+1..=end; their mean
            // is a half-integer, exactly representable.
            let mid_rank = (start + 1 + end) as f64 / 2.0;
            for &i in &order[start..end] {
                ranks[i] = mid_rank;
            }
            group_sizes.push(end - start);
            start = end;
        }
        Self { ranks, group_sizes }
    }

    /// Whether any two `|x|` are equal, which invalidates the exact null
    /// distribution (it assumes distinct ranks 1..n).
    pub fn has_ties(&self) -> bool {
        self.group_sizes.iter().any(|&t| t > 1)
    }

    /// `Σ (t³ - t)` over tie groups: the variance of the signed-rank statistic
    /// shrinks by this over 48 (Hollander, Wolfe & Chicken, 3rd ed., §3.1,
    /// large-sample approximation with ties).
    pub fn tie_term(&self) -> f64 {
        self.group_sizes
            .iter()
            .map(|&t| {
                let t = t as f64;
                t * t * t - t
            })
            .sum()
    }

    /// The signed-rank statistic V (T⁺): the sum of the ranks of the positive values.
    pub fn positive_rank_sum(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.ranks)
            .filter(|&(&v, _)| v > 0.0)
            .map(|(_, &r)| r)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_get_integer_ranks() {
        let x = [0.3, -0.1, 0.2];
        let r = AbsRanks::of(&x);
        assert_eq!(r.ranks, vec![3.0, 1.0, 2.0]);
        assert!(!r.has_ties());
        assert_eq!(r.tie_term(), 0.0);
        assert_eq!(r.positive_rank_sum(&x), 5.0);
    }

    #[test]
    fn ties_in_absolute_value_share_mid_ranks() {
        let x = [0.5, -0.5, 0.1, 0.5];
        let r = AbsRanks::of(&x);
        assert_eq!(r.ranks, vec![3.0, 3.0, 1.0, 3.0]);
        assert!(r.has_ties());
        assert_eq!(r.group_sizes, vec![1, 3]);
        assert_eq!(r.tie_term(), 24.0);
        assert_eq!(r.positive_rank_sum(&x), 7.0);
    }

    #[test]
    fn pair_tie_gives_half_ranks() {
        let x = [-0.2, 0.2];
        let r = AbsRanks::of(&x);
        assert_eq!(r.ranks, vec![1.5, 1.5]);
        assert_eq!(r.positive_rank_sum(&x), 1.5);
        assert_eq!(r.tie_term(), 6.0);
    }

    #[test]
    fn empty_input() {
        let r = AbsRanks::of(&[]);
        assert!(r.ranks.is_empty());
        assert!(!r.has_ties());
        assert_eq!(r.positive_rank_sum(&[]), 0.0);
    }
}
