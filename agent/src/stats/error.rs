//! Errors raised when constructing statistical inputs.

/// Why a set of measurements cannot be turned into [`Differences`](super::Differences).
///
/// Only construction can fail: once a `Differences` exists, every statistic in
/// this module is total on it.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StatsError {
    /// No values at all: no statistic is defined on an empty sample.
    #[error("no differences to analyse")]
    Empty,
    /// A value (or its logarithm) is NaN or infinite.
    #[error("value at index {index} is not finite")]
    NonFinite {
        /// Position of the first offending value.
        index: usize,
    },
    /// A timing is zero or negative, so its logarithm is undefined.
    #[error("value at index {index} is not positive")]
    NonPositive {
        /// Position of the first offending value.
        index: usize,
    },
    /// Base and head were measured a different number of times, so they cannot be paired.
    #[error("cannot pair {base} base measurements with {head} head measurements")]
    LengthMismatch {
        /// Number of base measurements.
        base: usize,
        /// Number of head measurements.
        head: usize,
    },
}
