//! Statistics for paired benchmark comparisons (ARCHITECTURE §3).
//!
//! Base and head are measured in n paired rounds; per benchmark the analysis
//! works on the log-ratios d_i = ln(head_i) − ln(base_i) ([`Differences`]):
//!
//! * [`hodges_lehmann()`] — shift estimate (median of Walsh averages) with its
//!   distribution-free confidence interval; [`to_percent`] for display;
//! * [`signed_rank_test`] — one-sided Wilcoxon tests against the minimum
//!   relevant effect t = ln(1 + δ);
//! * [`benjamini_hochberg`] — FDR adjustment over all p-values of a run;
//! * [`verdict()`] — the decision rule combining the above.
//!
//! Everything here is a pure function of its arguments: no I/O, no global
//! state, no panics on a valid [`Differences`]. The results are checked
//! against R 4.2 by `agent/tests/it/stats_golden.rs` (reference data generated
//! by `scripts/stats_reference.R`).

mod bh;
mod differences;
mod error;
mod hodges_lehmann;
mod normal;
mod order;
mod ranks;
mod signrank;
mod verdict;
mod walsh;
mod wilcoxon;

pub use bh::benjamini_hochberg;
pub use differences::Differences;
pub use error::StatsError;
pub use hodges_lehmann::{ShiftEstimate, hodges_lehmann};
pub use order::{median_interval, quantile};
pub use verdict::{Verdict, to_percent, verdict};
pub use wilcoxon::{Alternative, SignedRank, signed_rank_test};

/// The sample median (the mean of the middle two for an even count); NaN when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod median_tests {
    #[test]
    fn median_of_odd_even_and_empty_samples() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(super::median(vec![]).is_nan());
    }
}
