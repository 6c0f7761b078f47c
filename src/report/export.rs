//! Machine-friendly tables (as hyperfine exports them): the per-layer table of a
//! record as CSV and Markdown, each row naming the run it is from.

use crate::oci::record::RunRecord;

const HEADERS: [&str; 13] = [
    "run",
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

fn rows(run: &RunRecord) -> Vec<[String; 13]> {
    run.layers
        .iter()
        .map(|l| {
            [
                (run.index + 1).to_string(),
                l.index.to_string(),
                l.digest.clone(),
                l.compressed_bytes.to_string(),
                l.uncompressed_bytes.to_string(),
                l.files.to_string(),
                format!("{:.6}", l.start_s),
                format!("{:.6}", l.end_s),
                l.download_s.map_or_else(String::new, |v| format!("{v:.6}")),
                l.ttfb_s.map_or_else(String::new, |v| format!("{v:.6}")),
                l.verify_s.map_or_else(String::new, |v| format!("{v:.6}")),
                l.decompress_s
                    .map_or_else(String::new, |v| format!("{v:.6}")),
                l.extract_s.map_or_else(String::new, |v| format!("{v:.6}")),
            ]
        })
        .collect()
}

/// CSV of one run's per-layer table (its `run` column counts from 1).
pub fn csv(run: &RunRecord) -> String {
    let body: Vec<Vec<String>> = rows(run).into_iter().map(Vec::from).collect();
    super::table::to_csv(&HEADERS, &body)
}

/// One run's per-layer table as GitHub-flavoured Markdown.
pub fn markdown(run: &RunRecord) -> String {
    let body: Vec<Vec<String>> = rows(run).into_iter().map(Vec::from).collect();
    super::table::to_markdown(&HEADERS, &body)
}
