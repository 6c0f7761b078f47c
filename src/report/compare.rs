//! Side-by-side comparison of pull records (e.g. an original image and its
//! multi-stage rebuild): sizes, files, layers, pull time and each phase, with the
//! change in percent. Works on measured and simulated records alike.

use crate::oci::record::PullRecord;
use crate::oci::stats::Stats;

use super::human_bytes;
use super::table::{MachineTable, raw_pct, raw_s, render};

/// One row: a label and its record.
pub struct Entry<'a> {
    /// Shown in the first column.
    pub label: String,
    /// The record.
    pub record: &'a PullRecord,
}

fn median(s: &Stats) -> f64 {
    if s.n == 1 { s.mean } else { s.median }
}

/// The median of a phase that may not have been observed.
fn phase_median(s: &Option<Stats>) -> Option<f64> {
    s.as_ref().map(median)
}

/// Seconds, or `-` for a phase the puller did not let us see.
fn phase_cell(s: &Option<Stats>) -> String {
    phase_median(s).map_or_else(|| "-".into(), |v| format!("{v:.2} s"))
}

fn phase_pct(new: &Option<Stats>, old: &Option<Stats>) -> String {
    match (phase_median(new), phase_median(old)) {
        (Some(n), Some(o)) => pct(n, o),
        _ => "-".into(),
    }
}

fn files(r: &PullRecord) -> u64 {
    r.runs
        .last()
        .map_or(0, |run| run.layers.iter().map(|l| l.files).sum())
}

fn pct(new: f64, old: f64) -> String {
    if old == 0.0 {
        "-".into()
    } else {
        format!("{:+.0}%", 100.0 * (new - old) / old)
    }
}

/// A table of `groups`, each a baseline followed by alternatives; every alternative
/// gets a row of changes relative to its group's baseline.
pub fn comparison_table(groups: &[Vec<Entry<'_>>]) -> String {
    let (headers, rows) = comparison_rows(groups);
    let mut out = render(&headers, &rows, 1);
    out.push_str(&super::table::paragraph(
        "",
        "",
        "size = uncompressed tar bytes; pull = the median over runs; phases are per-run sums over layers (busy time when stages overlap); - = not observable for that puller",
    ));
    out
}

/// The headers and rows of [`comparison_table`], for CSV and Markdown export.
pub fn comparison_rows(groups: &[Vec<Entry<'_>>]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let headers = vec![
        "image",
        "size",
        "compressed",
        "files",
        "layers",
        "pull",
        "resolve",
        "download",
        "decompress",
        "extract",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for group in groups {
        let Some(base) = group.first() else { continue };
        for (i, e) in group.iter().enumerate() {
            let r = e.record;
            let s = &r.summary;
            rows.push(vec![
                e.label.clone(),
                human_bytes(r.image.uncompressed_bytes),
                human_bytes(r.image.compressed_bytes),
                files(r).to_string(),
                r.image.layers.len().to_string(),
                format!("{:.2} s", median(&s.wall_s)),
                format!("{:.2} s", median(&s.resolve_s)),
                phase_cell(&s.download_s),
                phase_cell(&s.decompress_s),
                phase_cell(&s.extract_s),
            ]);
            if i > 0 {
                let (b, bs) = (base.record, &base.record.summary);
                rows.push(vec![
                    "  change".into(),
                    pct(
                        r.image.uncompressed_bytes as f64,
                        b.image.uncompressed_bytes as f64,
                    ),
                    pct(
                        r.image.compressed_bytes as f64,
                        b.image.compressed_bytes as f64,
                    ),
                    pct(files(r) as f64, files(b) as f64),
                    pct(r.image.layers.len() as f64, b.image.layers.len() as f64),
                    pct(median(&s.wall_s), median(&bs.wall_s)),
                    pct(median(&s.resolve_s), median(&bs.resolve_s)),
                    phase_pct(&s.download_s, &bs.download_s),
                    phase_pct(&s.decompress_s, &bs.decompress_s),
                    phase_pct(&s.extract_s, &bs.extract_s),
                ]);
            }
        }
    }
    (headers, rows)
}

/// [`comparison_rows`] for programs: one row per image, raw numbers, and the
/// change of the median pull time against its group's baseline (empty for the
/// baseline itself).
pub fn comparison_machine(groups: &[Vec<Entry<'_>>]) -> MachineTable {
    let mut t = MachineTable::new(&[
        "image",
        "baseline",
        "uncompressed_bytes",
        "compressed_bytes",
        "files",
        "layers",
        "runs",
        "pull_median_s",
        "resolve_median_s",
        "download_median_s",
        "decompress_median_s",
        "extract_median_s",
        "compressed_change_pct",
        "pull_change_pct",
    ]);
    for group in groups {
        let Some(base) = group.first() else { continue };
        for (i, e) in group.iter().enumerate() {
            let (r, s) = (e.record, &e.record.summary);
            let (b, bs) = (base.record, &base.record.summary);
            let change =
                |new: f64, old: f64| (i > 0 && old != 0.0).then(|| 100.0 * (new - old) / old);
            t.rows.push(vec![
                e.label.clone(),
                base.label.clone(),
                r.image.uncompressed_bytes.to_string(),
                r.image.compressed_bytes.to_string(),
                files(r).to_string(),
                r.image.layers.len().to_string(),
                r.runs.len().to_string(),
                raw_s(Some(median(&s.wall_s))),
                raw_s(Some(median(&s.resolve_s))),
                raw_s(phase_median(&s.download_s)),
                raw_s(phase_median(&s.decompress_s)),
                raw_s(phase_median(&s.extract_s)),
                raw_pct(change(
                    r.image.compressed_bytes as f64,
                    b.image.compressed_bytes as f64,
                )),
                raw_pct(change(median(&s.wall_s), median(&bs.wall_s))),
            ]);
        }
    }
    t
}
