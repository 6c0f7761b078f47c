//! Did a pull get slower? Criterion-style comparison of two sets of runs: the
//! relative change in the mean with a bootstrap confidence interval, a permutation
//! test p-value, and a verdict against a noise threshold; plus what changed in the
//! image, so a regression points at its cause. Baselines are pull records saved
//! under a name.
//!
//! [`stats`] holds the tests on samples, [`image_changes`] what changed in the
//! image, [`render`] the table for people and [`baseline`] where baselines live.

mod baseline;
mod image_changes;
mod render;
mod stats;

pub use baseline::{baseline_path, parse_fraction};
pub use image_changes::image_changes;
pub use render::render_comparison;
pub use stats::{compare_samples, min_p_value, too_few_runs};

use crate::oci::record::{PullRecord, RunRecord};

/// How strict the comparison is.
#[derive(Debug, Clone, Copy)]
pub struct CompareOptions {
    /// Relative changes smaller than this are noise (criterion's default: 0.05).
    pub noise_threshold: f64,
    /// p-value below which a difference is significant; the confidence interval
    /// is at level `1 - significance`.
    pub significance: f64,
    /// Bootstrap and permutation resamples.
    pub resamples: usize,
    /// Seed for resampling, so reports repeat.
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            noise_threshold: 0.05,
            significance: 0.05,
            resamples: 10_000,
            seed: 0x5eed,
        }
    }
}

/// The outcome for one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly faster, by more than the noise threshold.
    Improved,
    /// Significantly slower, by more than the noise threshold.
    Regressed,
    /// Not significant, or significant but within the noise threshold.
    NoChange,
}

impl Verdict {
    /// Words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::NoChange => "no change within noise",
        }
    }
}

/// The comparison of one phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    /// `wall`, `resolve`, `download`, ...
    pub phase: String,
    /// Mean of the old samples (seconds).
    pub old_mean: f64,
    /// Mean of the new samples (seconds).
    pub new_mean: f64,
    /// `new_mean / old_mean - 1`.
    pub change: f64,
    /// Confidence interval of `change`.
    pub ci: (f64, f64),
    /// Two-sided p-value that the means differ (None for a single new sample,
    /// which is compared against the old range instead).
    pub p_value: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Reads one phase's value from a run: `None` when the run did not observe it.
pub type PhaseOf = fn(&RunRecord) -> Option<f64>;

/// The phases compared, with how to read each from a run.
pub const PHASES: &[(&str, PhaseOf)] = &[
    ("wall", |r| Some(r.wall_s)),
    ("resolve", |r| Some(r.resolve_s)),
    ("download", |r| r.layer_sum(|l| l.download_s)),
    ("verify", |r| r.layer_sum(|l| l.verify_s)),
    ("decompress", |r| r.layer_sum(|l| l.decompress_s)),
    ("extract", |r| r.layer_sum(|l| l.extract_s)),
];

/// A full comparison of two records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// One entry per phase, `wall` first.
    pub changes: Vec<Change>,
    /// What changed in the image, in words.
    pub image_changes: Vec<String>,
    /// Runs on each side.
    pub runs: (usize, usize),
    /// Set when the run counts cannot reach significance.
    pub warning: Option<String>,
    /// Phases some run on either side did not observe (another puller), so not compared.
    pub not_compared: Vec<String>,
}

/// Compares every phase of `new` with `old`.
pub fn compare_records(old: &PullRecord, new: &PullRecord, o: &CompareOptions) -> Comparison {
    let mut not_compared = Vec::new();
    let changes = PHASES
        .iter()
        .filter_map(|(name, f)| {
            let a: Option<Vec<f64>> = old.runs.iter().map(f).collect();
            let b: Option<Vec<f64>> = new.runs.iter().map(f).collect();
            match (a, b) {
                (Some(a), Some(b)) => Some(compare_samples(name, &a, &b, o)),
                _ => {
                    not_compared.push(name.to_string());
                    None
                }
            }
        })
        .collect();
    Comparison {
        not_compared,
        changes,
        image_changes: image_changes(old, new),
        runs: (old.runs.len(), new.runs.len()),
        warning: too_few_runs(old.runs.len(), new.runs.len(), o.significance),
    }
}
