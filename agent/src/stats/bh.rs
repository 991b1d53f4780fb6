//! False-discovery-rate control across all tests of a run.

/// Benjamini–Hochberg adjusted p-values ("q-values"), in the input order —
/// the same numbers as R's `p.adjust(p, "BH")`.
///
/// Benjamini & Hochberg (1995), "Controlling the false discovery rate",
/// JRSS B 57(1): rejecting every hypothesis with q ≤ α controls the FDR at α
/// for independent (or positively dependent) tests. With the p-values sorted
/// ascending, p_(1) ≤ … ≤ p_(m), q_(i) = min_{j ≥ i} min(1, m·p_(j)/j);
/// the running minimum from the top makes q monotone in p.
///
/// NaN entries stay NaN and are not counted in m (R's `p.adjust` does the
/// same with `NA`). Values outside [0, 1] are not checked.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p_values.len())
        .filter(|&i| !p_values[i].is_nan())
        .collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let m = order.len() as f64;
    let mut q = vec![f64::NAN; p_values.len()];
    let mut running_min = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        let scaled = m / (rank + 1) as f64 * p_values[i];
        running_min = running_min.min(scaled);
        q[i] = running_min.min(1.0);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        // p = (0.01, 0.04, 0.03, 0.005): sorted 0.005, 0.01, 0.03, 0.04 →
        // 4·p/j = 0.02, 0.02, 0.04, 0.04.
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.02, 0.04, 0.04, 0.02];
        assert!(q.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-15));
    }

    #[test]
    fn capped_at_one() {
        assert_eq!(benjamini_hochberg(&[0.9, 1.0, 0.8]), vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn empty_and_single() {
        assert!(benjamini_hochberg(&[]).is_empty());
        assert_eq!(benjamini_hochberg(&[0.03]), vec![0.03]);
    }

    #[test]
    fn nan_is_kept_and_not_counted() {
        let q = benjamini_hochberg(&[0.01, f64::NAN, 0.02]);
        assert_eq!(q[0], 0.02);
        assert!(q[1].is_nan());
        assert_eq!(q[2], 0.02);
    }
}
