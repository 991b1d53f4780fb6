//! Order statistics of the Walsh averages without materialising them.
//!
//! A sample of n values has M = n(n+1)/2 Walsh averages (x_i + x_j)/2, i ≤ j.
//! Sorting them costs O(n²) memory (80 MB at n = 4500); instead any order
//! statistic is found by bisecting over the doubles themselves, counting the
//! averages ≤ t in O(n) per step. Each average is computed exactly as
//! `(x_i + x_j) / 2`, so the selected value is bit-identical to the element
//! a full sort would return.

/// The Walsh averages of a sample, queried by rank.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WalshAverages {
    /// The sample, ascending.
    sorted: Vec<f64>,
}

/// One Walsh average. Floating addition and halving are monotone, so for fixed
/// `a` this is non-decreasing in `b` — the property the counting relies on.
fn walsh(a: f64, b: f64) -> f64 {
    (a + b) / 2.0
}

impl WalshAverages {
    /// Prepares a sample of finite values (O(n log n)).
    pub fn new(sample: &[f64]) -> Self {
        let mut sorted = sample.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self { sorted }
    }

    /// M = n(n+1)/2, the number of averages.
    pub fn count(&self) -> usize {
        let n = self.sorted.len();
        n * (n + 1) / 2
    }

    /// Number of averages ≤ t, by a two-pointer sweep: as i grows, the largest
    /// j with walsh(x_i, x_j) ≤ t can only move down.
    fn count_at_most(&self, t: f64) -> usize {
        let x = &self.sorted;
        let mut end = x.len();
        let mut total = 0;
        for i in 0..x.len() {
            while end > i && walsh(x[i], x[end - 1]) > t {
                end -= 1;
            }
            if end <= i {
                break;
            }
            total += end - i;
        }
        total
    }

    /// The k-th smallest average, 1-based (k is clamped to 1..=M).
    ///
    /// `count_at_most` is a step function that only rises at averages, so the
    /// smallest double t with at least k averages ≤ t is the k-th average
    /// itself. Bisection over the order-preserving integer image of the
    /// non-NaN doubles needs at most 64 steps.
    pub fn order_statistic(&self, k: usize) -> f64 {
        let k = k.clamp(1, self.count().max(1));
        let mut lo = ordered_key(f64::NEG_INFINITY);
        let mut hi = ordered_key(f64::INFINITY);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.count_at_most(from_ordered_key(mid)) >= k {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        // −0.0 sorts just below +0.0 here; both are the same average.
        let value = from_ordered_key(lo);
        if value == 0.0 { 0.0 } else { value }
    }

    /// The median of the averages: the Hodges–Lehmann estimator.
    pub fn median(&self) -> f64 {
        let m = self.count();
        if m % 2 == 1 {
            self.order_statistic(m.div_ceil(2))
        } else {
            midpoint(self.order_statistic(m / 2), self.order_statistic(m / 2 + 1))
        }
    }
}

/// (a + b)/2, falling back to a/2 + b/2 only if the sum overflows, so the
/// result stays between a and b for any finite inputs.
fn midpoint(a: f64, b: f64) -> f64 {
    let sum = a + b;
    if sum.is_finite() {
        sum / 2.0
    } else {
        a / 2.0 + b / 2.0
    }
}

const SIGN: u64 = 1 << 63;

/// Maps doubles to integers so that integer order is numeric order (with
/// −0 just below +0); NaNs fall outside [key(−∞), key(+∞)].
fn ordered_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits & SIGN != 0 { !bits } else { bits | SIGN }
}

/// Inverse of [`ordered_key`].
fn from_ordered_key(key: u64) -> f64 {
    if key & SIGN != 0 {
        f64::from_bits(key & !SIGN)
    } else {
        f64::from_bits(!key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_force(sample: &[f64]) -> Vec<f64> {
        let mut all = Vec::new();
        for i in 0..sample.len() {
            for j in i..sample.len() {
                all.push(walsh(sample[i], sample[j]));
            }
        }
        all.sort_by(f64::total_cmp);
        all
    }

    #[test]
    fn keys_preserve_order() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            5e-324,
            2.0,
            f64::INFINITY,
        ];
        let keys: Vec<u64> = values.iter().map(|&v| ordered_key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for v in values {
            assert_eq!(from_ordered_key(ordered_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn small_example() {
        // Averages of {1, 2, 4}: 1, 1.5, 2, 2.5, 3, 4.
        let w = WalshAverages::new(&[4.0, 1.0, 2.0]);
        assert_eq!(w.count(), 6);
        let all: Vec<f64> = (1..=6).map(|k| w.order_statistic(k)).collect();
        assert_eq!(all, vec![1.0, 1.5, 2.0, 2.5, 3.0, 4.0]);
        assert_eq!(w.median(), 2.25);
        assert_eq!(w.order_statistic(0), 1.0);
        assert_eq!(w.order_statistic(99), 4.0);
    }

    #[test]
    fn zeros_and_single_values() {
        let w = WalshAverages::new(&[0.0, -0.0, 0.0]);
        assert_eq!(w.median().to_bits(), 0f64.to_bits());
        assert_eq!(WalshAverages::new(&[-3.5]).median(), -3.5);
    }

    #[test]
    fn overflowing_averages_do_not_panic() {
        // Averages: −∞ (−MAX twice), 0, 0, +∞ ×3 — overflow, as in R's outer().
        let w = WalshAverages::new(&[f64::MAX, f64::MAX, -f64::MAX]);
        assert_eq!(w.order_statistic(1), f64::NEG_INFINITY);
        assert_eq!(w.order_statistic(2), 0.0);
        assert_eq!(w.order_statistic(6), f64::INFINITY);
        assert_eq!(w.median(), f64::INFINITY);
        assert_eq!(midpoint(f64::MAX, f64::MAX), f64::MAX);
    }

    proptest! {
        #[test]
        fn selection_matches_sorting(sample in prop::collection::vec(-5.0f64..5.0, 1..25), ties in 0usize..4) {
            // Rounding some values creates ties in the averages.
            let sample: Vec<f64> = sample
                .iter()
                .enumerate()
                .map(|(i, &v)| if i % 4 < ties { (v * 4.0).round() / 4.0 } else { v })
                .collect();
            let expected = brute_force(&sample);
            let w = WalshAverages::new(&sample);
            for (k, &value) in expected.iter().enumerate() {
                prop_assert_eq!(w.order_statistic(k + 1), value);
            }
        }
    }
}
