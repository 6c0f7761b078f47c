//! The comparison as a table for people.

use std::fmt::Write as _;

use super::{CompareOptions, Comparison};
use crate::report::table::render;

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
                if c.runs.1 == 1 {
                    // A bootstrap of one value only shows the old runs' spread.
                    "none (1 run)".into()
                } else {
                    format!("[{:+.1}%, {:+.1}%]", 100.0 * ch.ci.0, 100.0 * ch.ci.1)
                },
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
            " (one new value: compared with the old runs' range; no confidence interval, no p-value)"
        } else {
            ""
        }
    );
    if !c.not_compared.is_empty() {
        let _ = writeln!(
            out,
            "not compared (a puller did not let these be observed): {}",
            c.not_compared.join(", ")
        );
    }
    if let Some(w) = &c.warning {
        let _ = writeln!(out, "warning: {w}");
    }
    for line in &c.image_changes {
        let _ = writeln!(out, "{line}");
    }
    out
}
