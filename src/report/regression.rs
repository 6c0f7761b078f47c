//! Did a pull get slower? Criterion-style comparison of two sets of runs: the
//! relative change in the mean with a bootstrap confidence interval, a permutation
//! test p-value, and a verdict against a noise threshold; plus what changed in the
//! image, so a regression points at its cause. Baselines are pull records saved
//! under a name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::oci::record::{PullRecord, RunRecord};
use crate::report::{human_bytes, short_digest, table::render};
use crate::rng::Rng;

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

/// Reads one phase's value from a run.
pub type PhaseOf = fn(&RunRecord) -> f64;

/// The phases compared, with how to read each from a run.
pub const PHASES: &[(&str, PhaseOf)] = &[
    ("wall", |r| r.wall_s),
    ("resolve", |r| r.resolve_s),
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
}

/// Compares every phase of `new` with `old`.
pub fn compare_records(old: &PullRecord, new: &PullRecord, o: &CompareOptions) -> Comparison {
    let changes = PHASES
        .iter()
        .map(|(name, f)| {
            let a: Vec<f64> = old.runs.iter().map(f).collect();
            let b: Vec<f64> = new.runs.iter().map(f).collect();
            compare_samples(name, &a, &b, o)
        })
        .collect();
    Comparison {
        changes,
        image_changes: image_changes(old, new),
        runs: (old.runs.len(), new.runs.len()),
        warning: too_few_runs(old.runs.len(), new.runs.len(), o.significance),
    }
}

fn files(r: &PullRecord) -> i64 {
    r.runs
        .last()
        .map_or(0, |run| run.layers.iter().map(|l| l.files as i64).sum())
}

/// Layers added and removed, bytes and files: what may explain a change.
pub fn image_changes(old: &PullRecord, new: &PullRecord) -> Vec<String> {
    let (o, n) = (&old.image, &new.image);
    let mut out = Vec::new();
    if o.platform_manifest_digest == n.platform_manifest_digest {
        out.push(format!(
            "image unchanged (manifest {})",
            short_digest(&n.platform_manifest_digest)
        ));
        return out;
    }
    out.push(format!(
        "image changed: manifest {} -> {}",
        short_digest(&o.platform_manifest_digest),
        short_digest(&n.platform_manifest_digest)
    ));
    let files_of = |r: &PullRecord, digest: &str| {
        r.runs
            .last()
            .and_then(|run| run.layers.iter().find(|l| l.digest == digest))
            .map_or(0, |l| l.files)
    };
    for l in &n.layers {
        if !o.layers.iter().any(|x| x.digest == l.digest) {
            out.push(format!(
                "layer added: {} ({} compressed, {} uncompressed, {} files)",
                short_digest(&l.digest),
                human_bytes(l.compressed_bytes),
                human_bytes(l.uncompressed_bytes),
                files_of(new, &l.digest)
            ));
        }
    }
    for l in &o.layers {
        if !n.layers.iter().any(|x| x.digest == l.digest) {
            out.push(format!(
                "layer removed: {} ({} compressed, {} uncompressed, {} files)",
                short_digest(&l.digest),
                human_bytes(l.compressed_bytes),
                human_bytes(l.uncompressed_bytes),
                files_of(old, &l.digest)
            ));
        }
    }
    let delta = |a: u64, b: u64| {
        let d = b as i64 - a as i64;
        let sign = if d < 0 { "-" } else { "+" };
        let pct = if a > 0 {
            format!(" ({:+.1}%)", 100.0 * d as f64 / a as f64)
        } else {
            String::new()
        };
        format!("{sign}{}{pct}", human_bytes(d.unsigned_abs()))
    };
    out.push(format!(
        "layers {} -> {}; compressed {}; uncompressed {}; files {:+}",
        o.layers.len(),
        n.layers.len(),
        delta(o.compressed_bytes, n.compressed_bytes),
        delta(o.uncompressed_bytes, n.uncompressed_bytes),
        files(new) - files(old)
    ));
    out
}

/// The report for people.
pub fn render_comparison(
    c: &Comparison,
    old_label: &str,
    new_label: &str,
    o: &CompareOptions,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{new_label} compared with {old_label}");
    let level = 100.0 * (1.0 - o.significance);
    let headers = [
        "phase",
        "old mean",
        "new mean",
        "change",
        &format!("{level:.0}% CI"),
        "p",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = c
        .changes
        .iter()
        .map(|ch| {
            vec![
                ch.phase.clone(),
                format!("{:.3} s", ch.old_mean),
                format!("{:.3} s", ch.new_mean),
                format!("{:+.1}%", 100.0 * ch.change),
                format!("[{:+.1}%, {:+.1}%]", 100.0 * ch.ci.0, 100.0 * ch.ci.1),
                ch.p_value.map_or("-".into(), |p| format!("{p:.3}")),
                ch.verdict.describe().into(),
            ]
        })
        .collect();
    out.push_str(&render(&headers, &rows, 1));
    let _ = writeln!(
        out,
        "noise threshold {:.1}%, significance {}; {} old and {} new runs{}",
        100.0 * o.noise_threshold,
        o.significance,
        c.runs.0,
        c.runs.1,
        if c.runs.1 == 1 {
            " (one new value: compared with the old runs' range, no p-value)"
        } else {
            ""
        }
    );
    if let Some(w) = &c.warning {
        let _ = writeln!(out, "warning: {w}");
    }
    for line in &c.image_changes {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Where baseline `name` lives; names are plain file names.
pub fn baseline_path(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        return Err(format!(
            "baseline name {name:?} must be 1-100 characters of [A-Za-z0-9._-], not starting with '.'"
        ));
    }
    Ok(dir.join(format!("{name}.json")))
}

/// Parses `5%` or `0.05`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a fraction like 0.05 or a percentage like 5%"))?;
    if !(0.0..1.0).contains(&v) {
        return Err(format!("{s:?} must be between 0 and 1 (or 0% and 100%)"));
    }
    Ok(v)
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

    #[test]
    fn names_and_fractions() {
        let d = Path::new("/b");
        assert_eq!(
            baseline_path(d, "main-2024.1").unwrap(),
            Path::new("/b/main-2024.1.json")
        );
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(baseline_path(d, bad).is_err(), "{bad}");
        }
        assert_eq!(parse_fraction("5%").unwrap(), 0.05);
        assert_eq!(parse_fraction("0.02").unwrap(), 0.02);
        assert!(parse_fraction("150%").is_err() && parse_fraction("x").is_err());
    }
}
