//! The statistics of a comparison: a bootstrap confidence interval of the
//! relative change in the mean, a permutation-test p-value, and the verdict
//! against the noise threshold (criterion's method).

use super::{Change, CompareOptions, Verdict};
use crate::rng::Rng;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn resample(rng: &mut Rng, v: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend((0..v.len()).map(|_| v[rng.below(v.len() as u64) as usize]));
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Compares two samples of one phase.
pub fn compare_samples(phase: &str, old: &[f64], new: &[f64], o: &CompareOptions) -> Change {
    let (om, nm) = (mean(old), mean(new));
    let change = if om > 0.0 { nm / om - 1.0 } else { 0.0 };
    let mut rng = Rng::new(o.seed);
    if old.is_empty() || new.is_empty() || om <= 0.0 {
        return Change {
            phase: phase.into(),
            old_mean: om,
            new_mean: nm,
            change,
            ci: (change, change),
            p_value: None,
            verdict: Verdict::NoChange,
        };
    }
    // Bootstrap the relative change of the means.
    let mut ratios = Vec::with_capacity(o.resamples);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..o.resamples {
        resample(&mut rng, old, &mut a);
        resample(&mut rng, new, &mut b);
        let m = mean(&a);
        if m > 0.0 {
            ratios.push(mean(&b) / m - 1.0);
        }
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = o.significance;
    let ci = (
        percentile(&ratios, alpha / 2.0),
        percentile(&ratios, 1.0 - alpha / 2.0),
    );
    if new.len() == 1 {
        // One new value (a simulated record, a single run): compare it with the
        // spread of the old runs instead of testing means.
        let lo = old.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = old.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let verdict = if nm > hi && change > o.noise_threshold {
            Verdict::Regressed
        } else if nm < lo && change < -o.noise_threshold {
            Verdict::Improved
        } else {
            Verdict::NoChange
        };
        return Change {
            phase: phase.into(),
            old_mean: om,
            new_mean: nm,
            change,
            ci,
            p_value: None,
            verdict,
        };
    }
    // Permutation test on the difference of means.
    let observed = (nm - om).abs();
    let mut pooled: Vec<f64> = old.iter().chain(new).copied().collect();
    let mut extreme = 0usize;
    for _ in 0..o.resamples {
        for i in (1..pooled.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            pooled.swap(i, j);
        }
        let d = (mean(&pooled[old.len()..]) - mean(&pooled[..old.len()])).abs();
        if d >= observed - 1e-15 {
            extreme += 1;
        }
    }
    let p = (extreme + 1) as f64 / (o.resamples + 1) as f64;
    let verdict = if p < o.significance && ci.0 > o.noise_threshold {
        Verdict::Regressed
    } else if p < o.significance && ci.1 < -o.noise_threshold {
        Verdict::Improved
    } else {
        Verdict::NoChange
    };
    Change {
        phase: phase.into(),
        old_mean: om,
        new_mean: nm,
        change,
        ci,
        p_value: Some(p),
        verdict,
    }
}

/// The smallest p-value a two-sided permutation test can give for samples of
/// `n` and `m` values: 2 (equal sizes) or 1 extreme split out of C(n+m, n).
pub fn min_p_value(n: usize, m: usize) -> f64 {
    let (n, m) = (n.min(m), n.max(m));
    let mut c = 1f64;
    for i in 0..n {
        c = c * (m + n - i) as f64 / (i + 1) as f64;
    }
    let extremes = if n == m { 2.0 } else { 1.0 };
    (extremes / c).min(1.0)
}

/// Why a comparison of `n` old and `m` new runs cannot show significance, if so.
pub fn too_few_runs(n: usize, m: usize, significance: f64) -> Option<String> {
    let p = min_p_value(n, m);
    (m > 1 && p >= significance).then(|| {
        format!(
            "with {n} old and {m} new runs the smallest possible p-value is {p:.3}, not below the significance level {significance}: nothing can be called improved or regressed; use at least 4 runs on each side"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples around `mean` with relative spread `sd`, seeded.
    fn sample(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| mean * (1.0 + sd * rng.normal())).collect()
    }

    fn fast() -> CompareOptions {
        CompareOptions {
            resamples: 2000,
            ..CompareOptions::default()
        }
    }

    #[test]
    fn a_twenty_percent_shift_is_a_regression_and_its_reverse_an_improvement() {
        let old = sample(1, 20, 1.0, 0.03);
        let new = sample(2, 20, 1.2, 0.03);
        let c = compare_samples("wall", &old, &new, &fast());
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!(c.p_value.unwrap() < 0.01);
        assert!(c.ci.0 < 0.2 && 0.2 < c.ci.1 + 0.02, "{c:?}");
        let c = compare_samples("wall", &new, &old, &fast());
        assert_eq!(c.verdict, Verdict::Improved, "{c:?}");
    }

    #[test]
    fn identical_distributions_are_no_change() {
        let old = sample(3, 20, 1.0, 0.03);
        let new = sample(4, 20, 1.0, 0.03);
        assert_eq!(
            compare_samples("wall", &old, &new, &fast()).verdict,
            Verdict::NoChange
        );
        assert_eq!(
            compare_samples("wall", &old, &old, &fast()).verdict,
            Verdict::NoChange
        );
    }

    #[test]
    fn significant_shifts_inside_the_noise_threshold_are_no_change() {
        // +3% with tiny spread: significant, but within 5% noise.
        let old = sample(5, 30, 1.0, 0.002);
        let new = sample(6, 30, 1.03, 0.002);
        let c = compare_samples("wall", &old, &new, &fast());
        assert!(c.p_value.unwrap() < 0.01, "{c:?}");
        assert_eq!(c.verdict, Verdict::NoChange, "{c:?}");
        // ... and a regression with a 1% threshold.
        let strict = CompareOptions {
            noise_threshold: 0.01,
            ..fast()
        };
        assert_eq!(
            compare_samples("wall", &old, &new, &strict).verdict,
            Verdict::Regressed
        );
    }

    #[test]
    fn confidence_interval_covers_the_true_shift_at_about_the_stated_rate() {
        // 200 seeded experiments with a true +10% shift; a 95% interval should
        // cover it in roughly 95% of them (bootstrap percentile intervals run a
        // little narrow on small samples, hence the band).
        let o = CompareOptions {
            resamples: 1000,
            ..CompareOptions::default()
        };
        let covered = (0..200)
            .filter(|i| {
                let old = sample(1000 + i, 15, 1.0, 0.05);
                let new = sample(5000 + i, 15, 1.1, 0.05);
                let c = compare_samples("wall", &old, &new, &o);
                c.ci.0 <= 0.1 && 0.1 <= c.ci.1
            })
            .count();
        assert!((170..=200).contains(&covered), "covered {covered}/200");
    }

    #[test]
    fn single_new_sample_is_compared_with_the_old_range() {
        let old = sample(7, 10, 1.0, 0.02);
        let c = compare_samples("wall", &old, &[1.5], &fast());
        assert_eq!((c.verdict, c.p_value), (Verdict::Regressed, None));
        assert_eq!(
            compare_samples("wall", &old, &[1.0], &fast()).verdict,
            Verdict::NoChange
        );
        assert_eq!(
            compare_samples("wall", &old, &[0.5], &fast()).verdict,
            Verdict::Improved
        );
    }

    #[test]
    fn tiny_samples_cannot_be_significant_and_say_so() {
        assert!((min_p_value(3, 3) - 0.1).abs() < 1e-12);
        assert!((min_p_value(4, 4) - 2.0 / 70.0).abs() < 1e-12);
        assert!(too_few_runs(3, 3, 0.05).is_some());
        assert!(too_few_runs(4, 4, 0.05).is_none());
        assert!(
            too_few_runs(10, 1, 0.05).is_none(),
            "one new value is a range comparison"
        );
        // A doubling with 3 runs a side is not called a regression; the warning says why.
        let c = compare_samples("wall", &[1.0, 1.01, 0.99], &[2.0, 2.01, 1.99], &fast());
        assert_eq!(c.verdict, Verdict::NoChange);
        assert!(c.p_value.unwrap() >= 0.05);
    }
}
