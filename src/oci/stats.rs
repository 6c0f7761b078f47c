//! Statistics over repeated runs. Up to [`EXACT_UP_TO`] values everything is exact:
//! the median is the middle value (the mean of the two middle ones for an even
//! count, so the median of two runs is their mean) and the 95th percentile the
//! nearest rank. Larger samples (a fleet's nodes) take their percentiles from an
//! HDR histogram (microsecond resolution, 3 significant digits); mean and
//! standard deviation are always exact.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Summary of a sample of durations in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Sample size.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// 50th percentile.
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest value.
    pub max: f64,
    /// Sample standard deviation (n - 1); 0 for fewer than two values.
    pub stddev: f64,
}

const MICROS: f64 = 1e6;

/// Samples up to this size get exact percentiles.
pub const EXACT_UP_TO: usize = 10_000;

impl Stats {
    /// Statistics of `samples` (seconds). An empty sample gives all zeros.
    pub fn of(samples: &[f64]) -> Stats {
        let n = samples.len();
        if n == 0 {
            return Stats::default();
        }
        if n == 1 {
            // One value is its own distribution; no histogram needed (simulated
            // records and single runs are built often, and cheaply).
            let v = samples[0];
            return Stats {
                n,
                min: v,
                median: v,
                mean: v,
                p95: v,
                max: v,
                stddev: 0.0,
            };
        }
        let mean = samples.iter().sum::<f64>() / n as f64;
        let stddev =
            (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        if n <= EXACT_UP_TO {
            let mut sorted = samples.to_vec();
            sorted.sort_by(f64::total_cmp);
            let median = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            // Nearest rank: the smallest value with 95% of the sample at or below it.
            let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
            return Stats {
                n,
                min: sorted[0],
                median,
                mean,
                p95: sorted[rank - 1],
                max: sorted[n - 1],
                stddev,
            };
        }
        // Up to one hour at 3 significant digits; longer values saturate.
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600 * 1_000_000, 3)
            .expect("static histogram bounds are valid");
        for &s in samples {
            let us = (s.max(0.0) * MICROS).round() as u64;
            hist.saturating_record(us.max(1));
        }
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Histogram buckets can round a quantile past the extremes; clamp it back.
        let q = |p: f64| (hist.value_at_quantile(p) as f64 / MICROS).clamp(min, max);
        Stats {
            n,
            min,
            median: q(0.5),
            mean,
            p95: q(0.95),
            max,
            stddev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 1e-3 + 2e-6
    }

    #[test]
    fn known_sample() {
        let s = Stats::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.n, 5);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 5.0);
        assert!(close(s.mean, 3.0));
        assert!(close(s.median, 3.0), "median {}", s.median);
        assert!(close(s.p95, 5.0), "p95 {}", s.p95);
        assert!(close(s.stddev, 2.5f64.sqrt()));
    }

    #[test]
    fn hundred_values_percentiles() {
        let v: Vec<f64> = (1..=100).map(|i| i as f64 / 100.0).collect();
        let s = Stats::of(&v);
        assert_eq!(s.median, (0.50 + 0.51) / 2.0);
        assert_eq!(s.p95, 0.95);
    }

    #[test]
    fn small_samples_are_exact() {
        let two = Stats::of(&[1.0, 2.0]);
        assert_eq!(
            (two.median, two.p95),
            (1.5, 2.0),
            "the median of two is their mean"
        );
        let four = Stats::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(four.median, 2.5);
        // Large samples still agree with the exact values to 3 digits.
        let big: Vec<f64> = (1..=20_000).map(|i| i as f64 / 1000.0).collect();
        let s = Stats::of(&big);
        assert!(close(s.median, 10.0) && close(s.p95, 19.0), "{s:?}");
    }

    #[test]
    fn quantiles_never_leave_the_sample_range() {
        let s = Stats::of(&[4.605, 5.620, 8.799]);
        assert!(s.p95 <= s.max && s.median >= s.min, "{s:?}");
        assert_eq!(s.max, 8.799);
    }

    #[test]
    fn single_and_empty() {
        let s = Stats::of(&[0.25]);
        assert_eq!((s.n, s.stddev), (1, 0.0));
        assert!(close(s.median, 0.25));
        assert_eq!(Stats::of(&[]), Stats::default());
    }
}
