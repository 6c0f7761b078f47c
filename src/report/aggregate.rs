//! Merging records from many machines (one `pulltime pull --json` per node) into
//! one summary: per phase, the runs of every record merged into one HDR histogram.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::oci::record::PullRecord;
use crate::report::regression::PHASES;

/// Distribution of one phase over every run of every record.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseDistribution {
    /// `wall`, `resolve`, ...
    pub phase: String,
    /// Runs counted.
    pub n: u64,
    /// Smallest (seconds).
    pub min: f64,
    /// Percentiles (seconds).
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The merged summary.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    /// Records merged.
    pub records: usize,
    /// Distinct images (platform manifest digests, or references for simulated records).
    pub images: Vec<String>,
    /// Per phase.
    pub phases: Vec<PhaseDistribution>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600 * 1_000_000, 3).expect("static bounds")
}

/// Merges `records`: each record's runs go into its own histogram per phase, and
/// the histograms are added, as one would merge histograms collected on each node.
pub fn aggregate(records: &[PullRecord]) -> Aggregate {
    let mut images: Vec<String> = Vec::new();
    for r in records {
        let id = if r.image.platform_manifest_digest.is_empty() {
            r.image.reference.clone()
        } else {
            r.image.platform_manifest_digest.clone()
        };
        if !images.contains(&id) {
            images.push(id);
        }
    }
    let phases = PHASES
        .iter()
        .map(|(name, f)| {
            let mut total = histogram();
            let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, 0f64, 0f64, 0u64);
            for r in records {
                let mut h = histogram();
                for run in r.runs.iter().filter_map(f) {
                    let v = run.max(0.0);
                    h.saturating_record(((v * 1e6).round() as u64).max(1));
                    min = min.min(v);
                    max = max.max(v);
                    sum += v;
                    n += 1;
                }
                total.add(&h).expect("same bounds");
            }
            let q = |p: f64| (total.value_at_quantile(p) as f64 / 1e6).clamp(min.min(max), max);
            PhaseDistribution {
                phase: name.to_string(),
                n,
                min: if n == 0 { 0.0 } else { min },
                p50: q(0.5),
                p95: q(0.95),
                p99: q(0.99),
                max,
                mean: if n == 0 { 0.0 } else { sum / n as f64 },
            }
        })
        .collect();
    Aggregate {
        records: records.len(),
        images,
        phases,
    }
}
