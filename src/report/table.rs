//! The human table for a pull record: one row per layer, a totals row, each phase's
//! share of wall time, and run statistics when there were several runs.

use std::fmt::Write as _;

use crate::oci::record::{LayerRun, PullRecord};
use crate::oci::stats::Stats;

use super::{count, plural};
use super::{human_bytes, secs, short_digest};

/// Renders the whole report as text.
pub fn pull_table(record: &PullRecord) -> String {
    let mut out = String::new();
    let runs = record.runs.len();
    let img = &record.image;
    let how = if record.puller.name == "pulltime" {
        format!(
            "{} mode, {} concurrent downloads",
            record.settings.mode, record.settings.max_concurrent_downloads
        )
    } else {
        super::puller_line(&record.puller)
    };
    let head = format!(
        "{}  {}  manifest {}  {}, {} run{}{}",
        img.reference,
        img.platform,
        short_digest(&img.platform_manifest_digest),
        how,
        runs,
        if runs == 1 { "" } else { "s" },
        if record.settings.warmup > 0 {
            format!(" after {} warm-up", record.settings.warmup)
        } else {
            String::new()
        }
    );
    out.push_str(&paragraph("", "  ", &head));
    if runs > 1 {
        let _ = writeln!(out, "per-layer times are medians over the runs");
    }
    let headers = [
        "layer",
        "compressed",
        "uncompressed",
        "files",
        "download",
        "ttfb",
        "verify",
        "decompress",
        "extract",
    ];
    let faulty = record
        .runs
        .iter()
        .any(|r| r.retries > 0 || r.restarts > 0 || r.layers.iter().any(|l| l.retries > 0));
    let mut headers = headers.to_vec();
    if faulty {
        headers.push("faults (last run)");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let pick = |i: usize, f: fn(&LayerRun) -> Option<f64>| -> String {
        let v: Option<Vec<f64>> = record.runs.iter().map(|r| f(&r.layers[i])).collect();
        match v {
            Some(v) if v.len() == 1 => secs(v[0]),
            Some(v) => secs(Stats::of(&v).median),
            None => "-".into(),
        }
    };
    let last = record.runs.last().expect("a record has runs");
    for (i, l) in last.layers.iter().enumerate() {
        rows.push(vec![
            format!("#{i} {}", short_digest(&l.digest)),
            human_bytes(l.compressed_bytes),
            human_bytes(l.uncompressed_bytes),
            l.files.to_string(),
            pick(i, |l| l.download_s),
            pick(i, |l| l.ttfb_s),
            pick(i, |l| l.verify_s),
            pick(i, |l| l.decompress_s),
            pick(i, |l| l.extract_s),
        ]);
        if faulty {
            rows.last_mut().expect("pushed").push(layer_faults(l));
        }
    }
    let s = &record.summary;
    let med = |st: &Stats| if runs == 1 { st.mean } else { st.median };
    let phase = |st: &Option<Stats>| st.as_ref().map_or_else(|| "-".into(), |st| secs(med(st)));
    let wall = med(&s.wall_s);
    rows.push(vec![
        "total".into(),
        human_bytes(img.compressed_bytes),
        human_bytes(img.uncompressed_bytes),
        last.layers.iter().map(|l| l.files).sum::<u64>().to_string(),
        phase(&s.download_s),
        String::new(),
        phase(&s.verify_s),
        phase(&s.decompress_s),
        phase(&s.extract_s),
    ]);
    let share = |st: &Option<Stats>| match st {
        Some(st) if wall > 0.0 => format!("{:.0}%", 100.0 * med(st) / wall),
        _ => "-".into(),
    };
    rows.push(vec![
        "share of wall".into(),
        String::new(),
        String::new(),
        String::new(),
        share(&s.download_s),
        String::new(),
        share(&s.verify_s),
        share(&s.decompress_s),
        share(&s.extract_s),
    ]);
    if faulty {
        for r in rows.iter_mut().skip(last.layers.len()) {
            r.push(String::new());
        }
    }
    out.push_str(&render(&headers, &rows, 1));
    let requests = last.requests.len();
    let _ = writeln!(
        out,
        "wall {}  resolve {} ({}, {}){}",
        secs(wall),
        secs(med(&s.resolve_s)),
        plural(requests as u64, "request"),
        plural(last.connections.len() as u64, "connection"),
        if record.settings.mode == "streaming" {
            "  (streaming: stages overlap, so shares are busy time and can add up to more than 100%)"
        } else {
            ""
        }
    );
    if faulty {
        let _ = writeln!(out, "{}", run_faults(record));
    }
    for u in &last.unobserved {
        let _ = writeln!(out, "{} not observed: {}", u.phase, u.reason);
    }
    for run in &record.runs {
        if let Some(cold) = run.cold.as_ref().filter(|c| !c.all_bytes_fetched) {
            let _ = writeln!(
                out,
                "NOT COLD: in run {} the puller fetched {} of {} layer bytes (it already had {} layer(s))",
                run.index + 1,
                cold.fetched_bytes,
                cold.expected_bytes,
                cold.not_fetched.len()
            );
        }
    }
    if let Some(cpu) = &last.cpu {
        let _ = writeln!(
            out,
            "puller CPU (last run): user {}  system {}  ({})",
            secs(cpu.user_s),
            secs(cpu.system_s),
            cpu.processes.join(", ")
        );
    }
    if let Some(rl) = &last.ratelimit {
        let words = rl
            .words()
            .unwrap_or_else(|| format!("{} remaining of {}", rl.remaining, rl.limit));
        let _ = writeln!(out, "rate limit: {words}");
    }
    if runs > 1 {
        out.push('\n');
        let headers = ["phase", "min", "median", "mean", "p95", "max", "stddev"];
        let rows: Vec<Vec<String>> = [
            ("wall", Some(s.wall_s)),
            ("resolve", Some(s.resolve_s)),
            ("download", s.download_s),
            ("verify", s.verify_s),
            ("decompress", s.decompress_s),
            ("extract", s.extract_s),
        ]
        .iter()
        .filter_map(|(name, st)| st.map(|st| (name, st)))
        .map(|(name, st)| {
            vec![
                name.to_string(),
                secs(st.min),
                secs(st.median),
                secs(st.mean),
                secs(st.p95),
                secs(st.max),
                secs(st.stddev),
            ]
        })
        .collect();
        out.push_str(&render(&headers, &rows, 1));
    }
    out
}

/// The widest a table or a paragraph is ever printed.
pub const MAX_WIDTH: usize = 100;

/// The width tables and paragraphs wrap at; `usize::MAX` (the default): no
/// wrapping, one line per item, as scripts and `grep` want.
static WRAP_AT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

/// Wraps tables and paragraphs at `width` columns from now on (the command line
/// sets the terminal's width, at most [`MAX_WIDTH`]); `None`: never.
pub fn set_wrap_width(width: Option<usize>) {
    WRAP_AT.store(
        width.map_or(usize::MAX, |w| w.clamp(40, MAX_WIDTH)),
        std::sync::atomic::Ordering::Relaxed,
    );
}

fn wrap_at() -> usize {
    WRAP_AT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Left-aligns the first `left` columns and right-aligns the rest. A table wider
/// than the wrap width ([`set_wrap_width`]) wraps its first column (the labels)
/// onto more lines.
pub fn render(headers: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
    let mut rows = rows.to_vec();
    let limit = wrap_at();
    if total > limit && left > 0 && !widths.is_empty() {
        let floor = headers[0].chars().count().max(12);
        widths[0] = widths[0].saturating_sub(total - limit).max(floor);
        rows = rows
            .into_iter()
            .flat_map(|r| {
                let label = r.first().cloned().unwrap_or_default();
                let mut pieces = wrap_words(&label, widths[0]).into_iter();
                let mut first = r;
                if let Some(p) = pieces.next() {
                    first[0] = p;
                }
                let n = first.len();
                std::iter::once(first).chain(pieces.map(move |p| {
                    let mut more = vec![String::new(); n];
                    more[0] = format!(" {p}");
                    more
                }))
            })
            .collect();
    }
    let rows = &rows;
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i < left {
                let _ = write!(s, "{c:<w$}");
            } else {
                let _ = write!(s, "{c:>w$}");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `text` cut into lines of at most `width` characters, at spaces, `/` or `,`
/// where it can be, else anywhere.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > width {
        let cut = (1..=width)
            .rev()
            .find(|&i| matches!(rest[i - 1], ' ' | '/' | ','))
            .unwrap_or(width);
        lines.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest = rest[cut..].to_vec();
        while rest.first() == Some(&' ') {
            rest.remove(0);
        }
    }
    lines.push(rest.into_iter().collect());
    lines
}

/// A paragraph wrapped to the wrap width ([`set_wrap_width`]): its first line
/// starts with `first`, the others with `rest` (an indent).
pub fn paragraph(first: &str, rest: &str, text: &str) -> String {
    let width = wrap_at().saturating_sub(first.chars().count().max(rest.chars().count()));
    wrap_words(text, width)
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}{l}\n", if i == 0 { first } else { rest }))
        .collect()
}

/// A table for programs: raw numbers (seconds, bytes, counts, percent) with
/// the unit in each header (`pull_s`, `compressed_bytes`), as hyperfine's
/// `--export-csv` writes them; empty cells where a value was not observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineTable {
    /// Column names, each with its unit.
    pub headers: Vec<String>,
    /// One row per item, cells as `headers` say.
    pub rows: Vec<Vec<String>>,
}

impl MachineTable {
    /// A table with these column names.
    pub fn new(headers: &[&str]) -> Self {
        MachineTable {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// As CSV (RFC 4180).
    pub fn to_csv(&self) -> String {
        let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        to_csv(&headers, &self.rows)
    }
}

/// A raw number of seconds for a machine table (microsecond resolution), or
/// an empty cell.
pub fn raw_s(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.6}"))
}

/// A raw percentage (`12.5` for +12.5%), or an empty cell.
pub fn raw_pct(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(String::new, |v| format!("{v:.2}"))
}

/// The same table as CSV (RFC 4180: cells with commas, quotes or line breaks are
/// quoted).
pub fn to_csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let written = std::iter::once(w.write_record(headers))
        .chain(rows.iter().map(|r| w.write_record(r)))
        .collect::<Result<(), _>>();
    // Flexible rows into memory: nothing here can fail.
    written.expect("CSV into memory");
    String::from_utf8(w.into_inner().expect("CSV into memory")).expect("CSV of UTF-8 cells")
}

/// The same table as GitHub-flavoured Markdown.
pub fn to_markdown(headers: &[&str], rows: &[Vec<String>]) -> String {
    let esc = |c: &str| c.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}|\n",
        headers
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | "),
        headers.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        out.push_str(&format!(
            "| {} |\n",
            r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}

/// One layer's faults, e.g. `2 retries, 1 resume (1.2 MB kept), 0.84s lost`.
fn layer_faults(l: &LayerRun) -> String {
    if l.retries == 0 {
        return "-".into();
    }
    let mut parts = vec![count(l.retries as u64, "retry", "retries")];
    if l.resumes > 0 {
        let mut r = count(l.resumes as u64, "resume", "resumes");
        if l.resumed_bytes > 0 {
            let _ = write!(r, " ({} kept)", human_bytes(l.resumed_bytes));
        }
        if l.discarded_bytes > 0 {
            let _ = write!(r, " ({} refetched)", human_bytes(l.discarded_bytes));
        }
        parts.push(r);
    }
    parts.push(format!("{} lost", secs(l.fault_s)));
    parts.join(", ")
}

/// Faults over all runs: retries, resumes, time lost, restarts.
fn run_faults(record: &PullRecord) -> String {
    let retries: u64 = record.runs.iter().map(|r| r.retries as u64).sum();
    let resumes: u64 = record
        .runs
        .iter()
        .flat_map(|r| &r.layers)
        .map(|l| l.resumes as u64)
        .sum();
    let lost: f64 = record.runs.iter().map(|r| r.fault_s).sum();
    let restarts: u64 = record.runs.iter().map(|r| r.restarts as u64).sum();
    let thrown: f64 = record.runs.iter().map(|r| r.restart_s).sum();
    let mut s = format!(
        "faults over {} run{}: {} ({} of them resumed bodies), {} lost",
        record.runs.len(),
        if record.runs.len() == 1 { "" } else { "s" },
        count(retries, "retry", "retries"),
        resumes,
        secs(lost)
    );
    if restarts > 0 {
        let _ = write!(
            s,
            "; {} after a digest mismatch ({} of attempts thrown away, not in wall)",
            count(restarts, "restart", "restarts"),
            secs(thrown)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_tables_wrap_their_labels_and_paragraphs_wrap() {
        set_wrap_width(Some(MAX_WIDTH));
        let long = "registry.example.com:5000/team/a-very-long-image-name:2024-01-01-abcdef";
        let rows = vec![vec![long.to_string(), "1.00 s".into(), "2.00 s".into()]];
        let headers = ["image", &"x".repeat(40), &"y".repeat(40)];
        let text = render(&headers, &rows, 1);
        assert!(
            text.lines().all(|l| l.chars().count() <= MAX_WIDTH),
            "{text}"
        );
        assert!(text.lines().count() > 2, "{text}");
        assert_eq!(
            text.replace([' ', '\n'], "")
                .matches("a-very-long-image-name")
                .count(),
            1
        );
        let p = paragraph("  why: ", "    ", &"word ".repeat(60));
        assert!(p.lines().all(|l| l.chars().count() <= MAX_WIDTH), "{p}");
        assert!(p.lines().skip(1).all(|l| l.starts_with("    ")), "{p}");
        assert_eq!(wrap_words("abc", 10), vec!["abc"]);
    }

    #[test]
    fn csv_and_markdown() {
        let rows = vec![vec!["a,b".to_string(), "1 | 2".to_string()]];
        assert_eq!(to_csv(&["x", "y"], &rows), "x,y\n\"a,b\",1 | 2\n");
        let awkward = vec![vec!["say \"hi\"".to_string(), "two\rlines".to_string()]];
        assert_eq!(
            to_csv(&["x", "y"], &awkward),
            "x,y\n\"say \"\"hi\"\"\",\"two\rlines\"\n"
        );
        assert_eq!(
            to_markdown(&["x", "y"], &rows),
            "| x | y |\n|---|---|\n| a,b | 1 \\| 2 |\n"
        );
        assert_eq!(render(&["x", "y"], &rows, 1), "x        y\na,b  1 | 2\n");
    }
}
