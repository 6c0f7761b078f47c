//! Machine-friendly tables (as hyperfine exports them): the per-layer table of a
//! record as CSV and Markdown.

use crate::oci::record::PullRecord;

const HEADERS: [&str; 12] = [
    "layer",
    "digest",
    "compressed_bytes",
    "uncompressed_bytes",
    "files",
    "start_s",
    "end_s",
    "download_s",
    "ttfb_s",
    "verify_s",
    "decompress_s",
    "extract_s",
];

fn rows(record: &PullRecord, run: usize) -> Vec<[String; 12]> {
    let r = &record.runs[run.min(record.runs.len() - 1)];
    r.layers
        .iter()
        .map(|l| {
            [
                l.index.to_string(),
                l.digest.clone(),
                l.compressed_bytes.to_string(),
                l.uncompressed_bytes.to_string(),
                l.files.to_string(),
                format!("{:.6}", l.start_s),
                format!("{:.6}", l.end_s),
                format!("{:.6}", l.download_s),
                format!("{:.6}", l.ttfb_s),
                format!("{:.6}", l.verify_s),
                format!("{:.6}", l.decompress_s),
                format!("{:.6}", l.extract_s),
            ]
        })
        .collect()
}

/// CSV of the per-layer table.
pub fn csv(record: &PullRecord, run: usize) -> String {
    let body: Vec<Vec<String>> = rows(record, run).into_iter().map(Vec::from).collect();
    super::table::to_csv(&HEADERS, &body)
}

/// The per-layer table as GitHub-flavoured Markdown.
pub fn markdown(record: &PullRecord, run: usize) -> String {
    let body: Vec<Vec<String>> = rows(record, run).into_iter().map(Vec::from).collect();
    super::table::to_markdown(&HEADERS, &body)
}
