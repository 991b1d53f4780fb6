//! The validated input of every paired statistic.

use super::StatsError;

/// Paired log-ratio differences `d_i = ln(head_i) - ln(base_i)`.
///
/// Invariant: at least one value, every value finite. It is checked once, at
/// construction (the newtype pattern criterion.rs uses for its samples), so
/// the statistics can rely on it instead of re-validating or panicking.
#[derive(Debug, Clone, PartialEq)]
pub struct Differences(Vec<f64>);

impl Differences {
    /// Wraps already computed differences.
    ///
    /// # Errors
    /// [`StatsError::Empty`] for no values, [`StatsError::NonFinite`] for the
    /// first NaN or infinite value.
    pub fn new(values: Vec<f64>) -> Result<Self, StatsError> {
        if values.is_empty() {
            return Err(StatsError::Empty);
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(StatsError::NonFinite { index });
        }
        Ok(Self(values))
    }

    /// Log-ratio differences of paired timings: `d_i = ln(head_i) - ln(base_i)`.
    ///
    /// Working on the log scale makes a shift mean "head is x% slower",
    /// independent of the benchmark's absolute duration.
    ///
    /// # Errors
    /// [`StatsError::LengthMismatch`] if the slices differ in length,
    /// [`StatsError::Empty`] if both are empty, and for the first bad pair
    /// (base checked before head) [`StatsError::NonFinite`] or
    /// [`StatsError::NonPositive`].
    pub fn from_pairs(base: &[f64], head: &[f64]) -> Result<Self, StatsError> {
        if base.len() != head.len() {
            return Err(StatsError::LengthMismatch {
                base: base.len(),
                head: head.len(),
            });
        }
        let values = base
            .iter()
            .zip(head)
            .enumerate()
            .map(|(index, (&b, &h))| {
                check_timing(b, index)?;
                check_timing(h, index)?;
                Ok(h.ln() - b.ln())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(values)
    }

    /// The differences in measurement order.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// Number of pairs (at least 1).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: the invariant forbids empty samples. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A timing must be a positive finite number for its logarithm to be finite.
fn check_timing(value: f64, index: usize) -> Result<(), StatsError> {
    if !value.is_finite() {
        Err(StatsError::NonFinite { index })
    } else if value <= 0.0 {
        Err(StatsError::NonPositive { index })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_empty_and_non_finite() {
        assert_eq!(Differences::new(vec![]), Err(StatsError::Empty));
        assert_eq!(
            Differences::new(vec![0.1, f64::NAN]),
            Err(StatsError::NonFinite { index: 1 })
        );
        assert_eq!(
            Differences::new(vec![f64::NEG_INFINITY]),
            Err(StatsError::NonFinite { index: 0 })
        );
    }

    #[test]
    fn new_keeps_values_in_order() {
        let d = Differences::new(vec![0.5, -0.25, 0.0]).unwrap();
        assert_eq!(d.as_slice(), &[0.5, -0.25, 0.0]);
        assert_eq!(d.len(), 3);
        assert!(!d.is_empty());
    }

    #[test]
    fn from_pairs_takes_log_ratios() {
        let d = Differences::from_pairs(&[100.0, 50.0], &[110.0, 50.0]).unwrap();
        assert_eq!(d.as_slice(), &[110f64.ln() - 100f64.ln(), 0.0]);
    }

    #[test]
    fn from_pairs_rejects_bad_timings() {
        assert_eq!(
            Differences::from_pairs(&[1.0], &[1.0, 2.0]),
            Err(StatsError::LengthMismatch { base: 1, head: 2 })
        );
        assert_eq!(Differences::from_pairs(&[], &[]), Err(StatsError::Empty));
        assert_eq!(
            Differences::from_pairs(&[1.0, 0.0], &[1.0, 1.0]),
            Err(StatsError::NonPositive { index: 1 })
        );
        assert_eq!(
            Differences::from_pairs(&[1.0, 1.0], &[-3.0, 1.0]),
            Err(StatsError::NonPositive { index: 0 })
        );
        assert_eq!(
            Differences::from_pairs(&[1.0], &[f64::INFINITY]),
            Err(StatsError::NonFinite { index: 0 })
        );
        assert_eq!(
            Differences::from_pairs(&[f64::NAN], &[1.0]),
            Err(StatsError::NonFinite { index: 0 })
        );
    }

    #[test]
    fn from_pairs_accepts_subnormal_timings() {
        // ln of the smallest positive double is finite (about -744.4).
        let d = Differences::from_pairs(&[f64::from_bits(1)], &[1.0]).unwrap();
        assert!(d.as_slice()[0].is_finite());
    }
}
