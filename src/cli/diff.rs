//! `pulltime diff` and the comparison flags `pull --baseline` shares with it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::exit::usage;

use pulltime::oci::record::PullRecord;
use pulltime::report::json::read_record;
use pulltime::report::regression::{
    CompareOptions, PHASES, Verdict, compare_records, parse_fraction, render_comparison,
};

/// How two sets of runs are compared, and which regressions fail the command.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Baselines and gates")]
pub struct GateArgs {
    /// Relative changes below this are noise: `5%` or `0.05`.
    #[arg(long, default_value = "5%", value_parser = parse_fraction)]
    pub noise_threshold: f64,
    /// Significance level of the test (the confidence interval is at 1 - this).
    #[arg(long, default_value_t = 0.05, value_parser = parse_significance)]
    pub significance: f64,
    /// Exit non-zero if a phase regressed: the total (`wall`) by default, or the
    /// phases named: `--fail-on-regression=wall,extract` (wall, resolve, download,
    /// verify, decompress, extract).
    #[arg(long, num_args = 0..=1, require_equals = true, value_delimiter = ',', default_missing_value = "wall", value_parser = parse_phase)]
    pub fail_on_regression: Option<Vec<String>>,
}

fn parse_significance(s: &str) -> Result<f64, String> {
    let v = parse_fraction(s)?;
    if v == 0.0 {
        return Err("--significance must be above 0".into());
    }
    Ok(v)
}

fn parse_phase(s: &str) -> Result<String, String> {
    if PHASES.iter().any(|(p, _)| *p == s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown phase {s:?}; use {}",
            PHASES
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

impl GateArgs {
    fn options(&self) -> CompareOptions {
        CompareOptions {
            noise_threshold: self.noise_threshold,
            significance: self.significance,
            ..CompareOptions::default()
        }
    }
}

/// Compares `new` with `old`, writes the report to `out`, and fails when a gated
/// phase regressed.
pub fn compare_and_gate(
    old: &PullRecord,
    old_label: &str,
    new: &PullRecord,
    new_label: &str,
    args: &GateArgs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let o = args.options();
    let too_few =
        pulltime::report::regression::too_few_runs(old.runs.len(), new.runs.len(), o.significance);
    if let (Some(w), Some(_)) = (too_few, &args.fail_on_regression) {
        super::exit::usage!("--fail-on-regression cannot work here: {w}");
    }
    let comparison = compare_records(old, new, &o);
    write!(
        out,
        "{}",
        render_comparison(&comparison, old_label, new_label, &o)
    )?;
    if let Some(phases) = &args.fail_on_regression {
        let blind: Vec<&String> = phases
            .iter()
            .filter(|p| comparison.not_compared.contains(p))
            .collect();
        if !blind.is_empty() {
            super::exit::usage!(
                "--fail-on-regression cannot gate on {}: not observed in the runs of {old_label} or {new_label} (see runs[].unobserved)",
                blind
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let one_run = new.runs.len() == 1;
        let regressed: Vec<String> = comparison
            .changes
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed && phases.contains(&c.phase))
            .map(|c| {
                if one_run {
                    format!(
                        "{} {:+.1}% (one run, above every old run)",
                        c.phase,
                        100.0 * c.change
                    )
                } else {
                    format!(
                        "{} {:+.1}% [{:+.1}%, {:+.1}%]",
                        c.phase,
                        100.0 * c.change,
                        100.0 * c.ci.0,
                        100.0 * c.ci.1
                    )
                }
            })
            .collect();
        if !regressed.is_empty() {
            return Err(super::exit::Regressed(format!(
                "pull time regressed against {old_label}: {}",
                regressed.join("; ")
            ))
            .into());
        }
    }
    Ok(())
}

/// Reads baseline `name` from `dir`.
pub fn load_baseline(dir: &Path, name: &str) -> anyhow::Result<PullRecord> {
    let path =
        pulltime::report::regression::baseline_path(dir, name).map_err(anyhow::Error::msg)?;
    if !path.exists() {
        super::exit::usage!(
            "no baseline named {name:?} in {} (save one with --save-baseline {name})",
            dir.display()
        );
    }
    read_record(&path).with_context(|| format!("reading baseline {name:?}"))
}

/// Saves `record` as baseline `name` in `dir`.
pub fn save_baseline(dir: &Path, name: &str, record: &PullRecord) -> anyhow::Result<PathBuf> {
    let path =
        pulltime::report::regression::baseline_path(dir, name).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    pulltime::report::json::write_record(record, &path)?;
    Ok(path)
}

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime diff old.json new.json
  pulltime diff old.json new.json --fail-on-regression=wall,extract";

/// Arguments of `pulltime diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DiffArgs {
    /// The old record (a `--json` file or a saved baseline file).
    pub old: PathBuf,
    /// The new record (measured or simulated).
    pub new: PathBuf,
    /// Comparison settings.
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Runs `pulltime diff`.
pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    let old = read_record(&args.old)?;
    let new = read_record(&args.new)?;
    for (path, r) in [(&args.old, &old), (&args.new, &new)] {
        if r.runs.is_empty() {
            usage!(
                "{} has no runs: nothing to compare (report and compare refuse it too)",
                path.display()
            );
        }
        if r.simulated {
            eprintln!(
                "note: {} is simulated: its times are the model's prediction, not a measurement",
                path.display()
            );
        }
    }
    let label = |p: &Path, r: &PullRecord| {
        format!(
            "{}{}",
            p.display(),
            if r.simulated { " (simulated)" } else { "" }
        )
    };
    compare_and_gate(
        &old,
        &label(&args.old, &old),
        &new,
        &label(&args.new, &new),
        &args.gate,
        &mut pulltime::report::stdout::Stdout,
    )
}
