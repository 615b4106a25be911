//! The statistical tests the SLO guard decides with: plain functions on plain
//! numbers, each usable and testable on its own.
//!
//! Every function returns `None` rather than a meaningless number (empty
//! input, NaN, infinities), so a caller can never compare against a NaN
//! p-value by accident.

use std::cmp::Ordering;
use std::f64::consts::SQRT_2;

use statrs::function::erf::erfc;

/// Samples up to this combined size with no ties get the exact Mann–Whitney
/// distribution; its counts stay below C(100, 50) ≈ 1.0e29, well inside i128.
const EXACT_MAX_TOTAL: usize = 100;

/// The median of `values` (the mean of the two middle values for an even
/// count), sorting `values` in place. `None` when empty or when any value is
/// NaN or infinite.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        // Halve before adding so two huge values cannot overflow.
        values[mid - 1] / 2.0 + values[mid] / 2.0
    })
}

/// One-sided p-value of the pooled two-proportion z-test, H1: the bake's
/// proportion `errors1 / n1` is greater than the baseline's `errors0 / n0`.
///
/// z = (p̂1 − p̂0) / √(p̂ (1 − p̂) (1/n0 + 1/n1)) with the pooled
/// p̂ = (errors0 + errors1) / (n0 + n1), and p = 1 − Φ(z), where
/// 1 − Φ(z) = ½ erfc(z / √2). Source: NIST/SEMATECH e-Handbook of Statistical
/// Methods, §7.3.3 ("How can we determine whether two processes produce the
/// same proportion of defectives?"); any introductory text has the same
/// formula (e.g. Larson & Farber, *Elementary Statistics*, §8.4).
///
/// `None` when a count is NaN, infinite or negative, a side has no trials,
/// or errors exceed trials. When both sides are all-success or all-failure
/// there is no variation and no evidence of a rise: the p-value is 1.
pub fn two_proportion_p_value(errors0: f64, n0: f64, errors1: f64, n1: f64) -> Option<f64> {
    let counts = [errors0, n0, errors1, n1];
    if counts.iter().any(|c| !c.is_finite() || *c < 0.0) {
        return None;
    }
    if n0 <= 0.0 || n1 <= 0.0 || errors0 > n0 || errors1 > n1 {
        return None;
    }
    let (p0, p1) = (errors0 / n0, errors1 / n1);
    let pooled = (errors0 + errors1) / (n0 + n1);
    let variance = pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1);
    if !pooled.is_finite() || !variance.is_finite() {
        return None;
    }
    if variance <= 0.0 {
        return Some(if p1 > p0 { 0.0 } else { 1.0 });
    }
    finite_probability(normal_upper_tail((p1 - p0) / variance.sqrt()))
}

/// One-sided p-value of the Mann–Whitney U test (Wilcoxon rank-sum test),
/// H1: values in `bake` tend to be greater than values in `baseline`.
///
/// U counts the (baseline, bake) pairs where the bake value is greater, ties
/// counting ½ (U = R_bake − n1 (n1 + 1) / 2 with midranks). Without ties and
/// with n0 + n1 ≤ 100 the p-value is exact: the null distribution of U is
/// given by the coefficients of the Gaussian binomial coefficient
/// [n0 + n1 choose n1]_q (Mann & Whitney 1947, *Ann. Math. Statist.* 18(1);
/// Andrews, *The Theory of Partitions*, §3.3). Otherwise the normal
/// approximation with the tie-corrected variance
/// σ² = n0 n1 / 12 · ((n + 1) − Σ(t³ − t) / (n (n − 1))) and a continuity
/// correction of ½ is used (Lehmann, *Nonparametrics: Statistical Methods
/// Based on Ranks*, ch. 1). This matches `scipy.stats.mannwhitneyu(bake,
/// baseline, alternative="greater")`. Netflix/Spinnaker's canary judge
/// (Kayenta, `kayenta-judge/.../classifiers/metric/MannWhitneyClassifier.scala`)
/// compares canary and baseline metrics with the same test.
///
/// `None` when either side is empty or holds a NaN or infinite value. When
/// every value is tied there is no evidence of a rise: the p-value is 1.
pub fn mann_whitney_greater_p_value(baseline: &[f64], bake: &[f64]) -> Option<f64> {
    if baseline.is_empty() || bake.is_empty() {
        return None;
    }
    if baseline.iter().chain(bake).any(|v| !v.is_finite()) {
        return None;
    }
    let ranked = RankSum::new(baseline, bake);
    let (n0, n1) = (baseline.len(), bake.len());
    if !ranked.has_ties && n0 + n1 <= EXACT_MAX_TOTAL {
        // Without ties U is a whole number of pairs.
        let u = ranked.u.round().max(0.0) as usize;
        return finite_probability(exact_upper_tail(n0, n1, u));
    }
    normal_upper_tail_u(n0, n1, ranked.u, ranked.tie_term)
}

/// The smallest p-value [`mann_whitney_greater_p_value`] can return for this
/// baseline and `bake_len` bake values: the one where every bake value lies
/// above every baseline value. When it is not below the significance level,
/// no rise, however large, can be shown yet: the sample is too small (or
/// the baseline too tied) and the test has no power. `None` as for the test.
pub fn mann_whitney_best_p_value(baseline: &[f64], bake_len: usize) -> Option<f64> {
    let top = baseline
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    let step = top.abs().max(1.0);
    let above: Vec<f64> = (1..=bake_len).map(|i| top + step * i as f64).collect();
    mann_whitney_greater_p_value(baseline, &above)
}

/// The smallest one-sided Mann–Whitney p-value `n0` baseline and `n1` bake
/// values without ties can give: 1 / C(n0 + n1, n0), the chance that all bake
/// values rank above all baseline values. Config checks use it to reject
/// windows too short for the guard's significance level.
pub fn mann_whitney_smallest_p_value(n0: usize, n1: usize) -> f64 {
    // C(n, k) as a running product of ratios: exact enough and never overflows.
    let k = n0.min(n1);
    let combinations = (1..=k).fold(1.0_f64, |c, i| c * (n0 + n1 - k + i) as f64 / i as f64);
    1.0 / combinations
}

/// U of the bake sample and the tie term Σ(t³ − t) over tie groups.
struct RankSum {
    u: f64,
    tie_term: f64,
    has_ties: bool,
}

impl RankSum {
    fn new(baseline: &[f64], bake: &[f64]) -> Self {
        let mut pooled: Vec<(f64, bool)> = baseline
            .iter()
            .map(|v| (*v, false))
            .chain(bake.iter().map(|v| (*v, true)))
            .collect();
        // Finite values only (checked by the caller), so partial_cmp is total;
        // it also keeps −0.0 and 0.0 in one tie group.
        pooled.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
        let mut bake_rank_sum = 0.0;
        let mut tie_term = 0.0;
        let mut start = 0;
        while start < pooled.len() {
            let mut end = start + 1;
            while end < pooled.len() && pooled[end].0 == pooled[start].0 {
                end += 1;
            }
            // Ranks start + 1 ..= end share their mean.
            let midrank = (start + 1 + end) as f64 / 2.0;
            let bake_in_group = pooled[start..end].iter().filter(|(_, b)| *b).count();
            bake_rank_sum += midrank * bake_in_group as f64;
            let t = (end - start) as f64;
            tie_term += t * t * t - t;
            start = end;
        }
        let n1 = bake.len() as f64;
        RankSum {
            u: bake_rank_sum - n1 * (n1 + 1.0) / 2.0,
            tie_term,
            has_ties: tie_term > 0.0,
        }
    }
}

/// P(U ≥ u) under H0 for sample sizes n0, n1 without ties.
///
/// The number of orderings with U = k is the coefficient of q^k in
/// ∏_{i=1..n1} (1 − q^(n0+i)) / (1 − q^i). Each step multiplies by
/// (1 − q^a) and divides by the power series of (1 − q^i); coefficients past
/// the maximum n0·n1 never feed back into lower ones, so truncating is exact.
fn exact_upper_tail(n0: usize, n1: usize, u: usize) -> f64 {
    let len = n0 * n1 + 1;
    let mut counts = vec![0i128; len];
    counts[0] = 1;
    for i in 1..=n1 {
        let a = n0 + i;
        for k in (a..len).rev() {
            counts[k] -= counts[k - a];
        }
        for k in i..len {
            counts[k] += counts[k - i];
        }
    }
    let total: i128 = counts.iter().sum();
    let tail: i128 = counts[u.min(len)..].iter().sum();
    tail as f64 / total as f64
}

/// Normal approximation of P(U ≥ u) with tie correction and a continuity
/// correction of ½.
fn normal_upper_tail_u(n0: usize, n1: usize, u: f64, tie_term: f64) -> Option<f64> {
    let (m0, m1) = (n0 as f64, n1 as f64);
    let n = m0 + m1;
    let mean = m0 * m1 / 2.0;
    let ties = if n > 1.0 {
        tie_term / (n * (n - 1.0))
    } else {
        0.0
    };
    let variance = m0 * m1 / 12.0 * ((n + 1.0) - ties);
    if !variance.is_finite() {
        return None;
    }
    if variance <= 0.0 {
        // Every value tied: U sits on its mean, no evidence either way.
        return Some(1.0);
    }
    finite_probability(normal_upper_tail((u - mean - 0.5) / variance.sqrt()))
}

/// 1 − Φ(z) for the standard normal distribution.
fn normal_upper_tail(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z == f64::INFINITY {
        return 0.0;
    }
    if z == f64::NEG_INFINITY {
        return 1.0;
    }
    0.5 * erfc(z / SQRT_2)
}

/// A probability clamped to [0, 1]; `None` if the arithmetic produced NaN.
fn finite_probability(p: f64) -> Option<f64> {
    p.is_finite().then(|| p.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn median_of_odd_even_and_invalid_inputs() {
        let cases: &[(&[f64], Option<f64>)] = &[
            (&[], None),
            (&[3.0], Some(3.0)),
            (&[3.0, 1.0, 2.0], Some(2.0)),
            (&[4.0, 1.0, 3.0, 2.0], Some(2.5)),
            (&[1.0, f64::NAN, 3.0], None),
            (&[1.0, f64::INFINITY], None),
            (&[f64::MAX, f64::MAX], Some(f64::MAX)),
        ];
        for (values, expected) in cases {
            let mut values = values.to_vec();
            assert_eq!(median(&mut values), *expected, "{values:?}");
        }
    }

    #[test]
    fn two_proportion_against_hand_computed_values() {
        // (errors0, n0, errors1, n1, expected p, tolerance)
        let cases = [
            // p̂ = 35/2000 = 0.0175, se = √(0.0175·0.9825·0.002) = 0.0058641,
            // z = 0.015 / se = 2.55794, 1 − Φ(z) = 0.0052647.
            (10.0, 1000.0, 25.0, 1000.0, 0.005_264_7, 1e-6),
            // Textbook example 140/200 vs 255/340: z = 1.26601 (one-sided
            // p = 0.10275) when the larger proportion is the bake's.
            (140.0, 200.0, 255.0, 340.0, 0.102_754, 1e-5),
            // ... and the complement when it is the baseline's.
            (255.0, 340.0, 140.0, 200.0, 1.0 - 0.102_754, 1e-5),
            // Identical proportions: z = 0, p = ½.
            (10.0, 1000.0, 10.0, 1000.0, 0.5, 1e-12),
            // No errors anywhere: no variation, no evidence.
            (0.0, 1000.0, 0.0, 1000.0, 1.0, 0.0),
            // 0.1 % → 2 % with 10k requests each: z = 13.18, p ≈ 5.7e-40.
            (10.0, 10_000.0, 200.0, 10_000.0, 5.67e-40, 1e-41),
        ];
        for (e0, n0, e1, n1, expected, tolerance) in cases {
            let p = two_proportion_p_value(e0, n0, e1, n1).expect("valid counts");
            assert!(close(p, expected, tolerance), "{e0}/{n0} vs {e1}/{n1}: {p}");
        }
    }

    #[test]
    fn two_proportion_rejects_invalid_counts() {
        let cases = [
            (f64::NAN, 10.0, 1.0, 10.0),
            (1.0, f64::INFINITY, 1.0, 10.0),
            (-1.0, 10.0, 1.0, 10.0),
            (1.0, 0.0, 1.0, 10.0),
            (11.0, 10.0, 1.0, 10.0),
            (1.0, 10.0, 1.0, -10.0),
        ];
        for (e0, n0, e1, n1) in cases {
            assert_eq!(two_proportion_p_value(e0, n0, e1, n1), None);
        }
    }

    #[test]
    fn mann_whitney_exact_small_samples() {
        // (baseline, bake, expected p). Exact: P(U ≥ u) = (orderings with
        // U ≥ u) / C(n0 + n1, n1).
        let cases: &[(&[f64], &[f64], f64)] = &[
            // U = 16 of 16, 1 ordering of C(8,4) = 70 → 1/70. Kayenta's own
            // MannWhitneySuite has the two-sided 2/70 = 0.028571 here.
            (&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0], 1.0 / 70.0),
            // U = 1 + 2 + 3 = 6. For n0 = n1 = 3 the counts of U = 0..9 are
            // 1 1 2 3 3 3 3 2 1 1 (sum 20), so P(U ≥ 6) = 7/20.
            (&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0], 7.0 / 20.0),
            // Bake entirely below: U = 0, P(U ≥ 0) = 1.
            (&[10.0, 11.0, 12.0], &[1.0, 2.0, 3.0], 1.0),
            // 3 bake intervals above 30 baseline ones: 1 / C(33, 3) = 1/5456.
            (&THIRTY, &[100.0, 101.0, 102.0], 1.0 / 5456.0),
        ];
        for (baseline, bake, expected) in cases {
            let p = mann_whitney_greater_p_value(baseline, bake).expect("valid samples");
            assert!(close(p, *expected, 1e-12), "{baseline:?} vs {bake:?}: {p}");
        }
    }

    const THIRTY: [f64; 30] = {
        let mut values = [0.0; 30];
        let mut i = 0;
        while i < 30 {
            values[i] = i as f64;
            i += 1;
        }
        values
    };

    #[test]
    fn three_bake_intervals_need_seven_baseline_intervals_at_one_percent() {
        // docs/slo-guard.md: 1/C(9, 3) = 1/84 > 0.01, 1/C(10, 3) = 1/120 < 0.01.
        let bake = [100.0, 101.0, 102.0];
        let six = mann_whitney_greater_p_value(&THIRTY[..6], &bake).expect("valid");
        let seven = mann_whitney_greater_p_value(&THIRTY[..7], &bake).expect("valid");
        assert!(close(six, 1.0 / 84.0, 1e-15) && six > 0.01, "{six}");
        assert!(close(seven, 1.0 / 120.0, 1e-15) && seven < 0.01, "{seven}");
    }

    #[test]
    fn exact_distribution_matches_enumeration_for_three_by_three() {
        // Counts of U = 0..=9 for n0 = n1 = 3, listed by hand from the 20
        // orderings: 1 1 2 3 3 3 3 2 1 1.
        let counts = [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0, 1.0];
        for u in 0..=10 {
            let expected: f64 = counts.iter().skip(u).sum::<f64>() / 20.0;
            assert!(close(exact_upper_tail(3, 3, u), expected, 1e-15), "u = {u}");
        }
    }

    #[test]
    fn mann_whitney_normal_approximation_with_ties() {
        // Ties force the normal approximation.
        // baseline 1 2 2 3, bake 2 3 3 4. Midranks: 1 → 1, 2 → 3, 3 → 6,
        // 4 → 8. R_bake = 3 + 6 + 6 + 8 = 23, U = 23 − 10 = 13, mean 8.
        // Σ(t³ − t) = 24 + 24 = 48; σ² = 16/12 · (9 − 48/56) = 10.857143.
        // z = (13 − 8 − ½) / 3.295018 = 1.365698, 1 − Φ(z) = 0.0860169.
        let p = mann_whitney_greater_p_value(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 3.0, 4.0])
            .expect("valid samples");
        assert!(close(p, 0.086_016_85, 1e-7), "{p}");

        // 3 bake above 30 baseline with one tie in the baseline: U = 90,
        // σ² = 90/12 · (34 − 6/1056) = 254.957, z = 44.5 / 15.96739 = 2.78693,
        // p = 0.0026605: still far below α = 0.01.
        let mut baseline = THIRTY.to_vec();
        baseline[1] = 0.0;
        let p = mann_whitney_greater_p_value(&baseline, &[100.0, 101.0, 102.0]).expect("valid");
        assert!(close(p, 0.002_660_5, 1e-7), "{p}");
    }

    #[test]
    fn mann_whitney_normal_approximation_without_ties() {
        // U = 9 for n0 = n1 = 3: σ² = 9 · 7 / 12 = 5.25,
        // z = (9 − 4.5 − ½) / 2.291288 = 1.745743, p = 0.0404278
        // (ClickHouse's mannWhitneyUTest('greater') documents 0.04042779918503192).
        let p = normal_upper_tail_u(3, 3, 9.0, 0.0).expect("valid");
        assert!(close(p, 0.040_427_799_185, 1e-10), "{p}");
    }

    #[test]
    fn mann_whitney_identical_and_invalid_samples() {
        let same = [0.2, 0.25, 0.3, 0.22, 0.27];
        let p = mann_whitney_greater_p_value(&same, &same).expect("valid");
        assert!(p > 0.4, "identical samples must not look different: {p}");
        assert_eq!(
            mann_whitney_greater_p_value(&[1.0; 5], &[1.0; 5]),
            Some(1.0)
        );
        assert_eq!(mann_whitney_greater_p_value(&[], &[1.0]), None);
        assert_eq!(mann_whitney_greater_p_value(&[1.0], &[]), None);
        assert_eq!(mann_whitney_greater_p_value(&[1.0, f64::NAN], &[1.0]), None);
    }

    #[test]
    fn exact_counts_fit_for_the_largest_exact_case() {
        // 50 + 50 is the largest exact case; the tail at the mean is ½ plus
        // half the central coefficient's share.
        let p = exact_upper_tail(50, 50, 1250);
        assert!(p > 0.5 && p < 0.52, "{p}");
        assert!(close(exact_upper_tail(50, 50, 0), 1.0, 0.0));
    }

    #[test]
    fn smallest_p_value_is_one_over_the_orderings() {
        // 3 + 4 values: C(7, 3) = 35 orderings, one with every bake value on top.
        assert!(close(
            mann_whitney_smallest_p_value(3, 4),
            1.0 / 35.0,
            1e-12
        ));
        assert!(close(
            mann_whitney_smallest_p_value(4, 3),
            1.0 / 35.0,
            1e-12
        ));
        assert!(close(
            mann_whitney_smallest_p_value(5, 5),
            1.0 / 252.0,
            1e-12
        ));
        assert!(close(mann_whitney_smallest_p_value(0, 5), 1.0, 0.0));
        // The same number the test gives when the bake is entirely above.
        let best = mann_whitney_best_p_value(&[1.0, 2.0, 3.0], 4).expect("p");
        assert!(close(best, 1.0 / 35.0, 1e-12), "{best}");
    }

    #[test]
    fn a_tied_baseline_weakens_the_best_p_value() {
        // Three identical baseline minutes (a p99 that never moves at rest)
        // and four bake minutes: not even a bake entirely above reaches 0.01.
        let tied = mann_whitney_best_p_value(&[0.05, 0.05, 0.05], 4).expect("p");
        assert!(tied > 0.01, "{tied}");
        // Five baseline minutes do.
        let longer = mann_whitney_best_p_value(&[0.05; 5], 4).expect("p");
        assert!(longer < 0.01, "{longer}");
        assert_eq!(mann_whitney_best_p_value(&[], 4), None);
        assert_eq!(mann_whitney_best_p_value(&[f64::NAN], 4), None);
    }
}
