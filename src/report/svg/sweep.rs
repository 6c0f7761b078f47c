//! Pull time against bandwidth: a line per image or what-if scenario, both axes
//! on log scales. The curves part at the slow end, where bytes set the pace, and
//! converge at the fast end, where fixed costs and CPU work do; on a log time
//! axis equal distances are equal ratios, so the fast end stays readable.

use super::axis::{log_ticks, seconds_label, short_rate};
use super::text::{
    Anchor, Canvas, Chart, NORMAL, Swatch, TITLE, dash_attr, esc, legend, legend_entry_width,
    line_height, text_width,
};

/// Series colours, then (past eight series) the same colours dashed.
const PALETTE: &[&str] = &[
    "#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#546e7a",
];
const DASHES: &[&str] = &["", "7 4", "2 3", "9 3 2 3"];

const MIN_WIDTH: f64 = 960.0;
const MARGIN: f64 = 12.0;
const PLOT_TOP: f64 = 62.0;
const PLOT_H: f64 = 360.0;

/// A series: its name (an image reference or a scenario) and its points
/// (bytes per second, pull time in seconds).
pub type Series = (String, Vec<(f64, f64)>);

/// Colour and dash pattern of series `i`.
fn style(i: usize) -> (&'static str, &'static str) {
    (
        PALETTE[i % PALETTE.len()],
        DASHES[(i / PALETTE.len()) % DASHES.len()],
    )
}

/// The chart: `title` on top, the series on log-log axes, and a legend below
/// naming every series in full (the canvas widens for a long name).
pub fn bandwidth_sweep(title: &str, series: &[Series]) -> Chart {
    const NOTE: &str = "both axes on log scales: equal distances are equal ratios, so the fast end, where the lines converge, stays readable";
    let width = [
        MIN_WIDTH,
        text_width(title, TITLE) + 2.0 * MARGIN,
        text_width(NOTE, NORMAL) + 2.0 * MARGIN,
    ]
    .into_iter()
    .chain(
        series
            .iter()
            .map(|s| legend_entry_width(&s.0) + 2.0 * MARGIN),
    )
    .fold(0.0, f64::max);
    let points = || series.iter().flat_map(|s| s.1.iter().copied());
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, 0f64, f64::MAX, 0f64);
    for (x, y) in points().filter(|p| positive(p.0) && positive(p.1)) {
        (x_lo, x_hi) = (x_lo.min(x), x_hi.max(x));
        (y_lo, y_hi) = (y_lo.min(y), y_hi.max(y));
    }
    if x_hi == 0.0 {
        (x_lo, x_hi, y_lo, y_hi) = (1.25e5, 1.25e8, 1.0, 10.0);
    }
    let y_ticks = log_ticks(y_lo, y_hi);
    let (ya, yb) = (y_ticks[0].log10(), y_ticks[y_ticks.len() - 1].log10());
    let mut xs: Vec<f64> = points().map(|p| p.0).filter(|x| positive(*x)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    // Ticks at the bandwidths swept, or at powers of ten when they are many.
    let x_ticks: Vec<f64> = if (1..=16).contains(&xs.len()) {
        xs
    } else {
        log_ticks(x_lo * 8.0, x_hi * 8.0)
            .into_iter()
            .map(|b| b / 8.0)
            .collect()
    };
    let (mut xa, mut xb) = (
        x_ticks[0].min(x_lo).log10(),
        x_ticks[x_ticks.len() - 1].max(x_hi).log10(),
    );
    if xb - xa < 1e-9 {
        (xa, xb) = (xa - 0.5, xb + 0.5);
    }

    let y_labels: Vec<String> = y_ticks.iter().map(|t| seconds_label(*t)).collect();
    let y_label_w = y_labels
        .iter()
        .map(|l| text_width(l, NORMAL))
        .fold(0.0, f64::max);
    let left = MARGIN + line_height(NORMAL) + 10.0 + y_label_w + 8.0;
    let right = width - MARGIN - 20.0;
    let bottom = PLOT_TOP + PLOT_H;
    // A little room inside the frame so that the end ticks' labels fit.
    let pad = 24.0;
    let px = |v: f64| left + pad + (right - left - 2.0 * pad) * (v.log10() - xa) / (xb - xa);
    let py = |v: f64| bottom - PLOT_H * (v.max(1e-12).log10() - ya) / (yb - ya);

    let mut c = Canvas::new();
    c.heading(MARGIN, title, &[NOTE]);
    c.shape(&format!(
        r##"<rect x="{left:.1}" y="{PLOT_TOP}" width="{:.1}" height="{PLOT_H}" fill="none" stroke="#000000"/>"##,
        right - left
    ));
    for (t, label) in y_ticks.iter().zip(&y_labels) {
        let y = py(*t);
        c.shape(&format!(
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#e6e6e6"/>"##
        ));
        c.text_if_free(left - 6.0, y + 4.0, Anchor::End, NORMAL, label);
    }
    for t in &x_ticks {
        let x = px(*t);
        c.shape(&format!(
            r##"<line x1="{x:.1}" y1="{PLOT_TOP}" x2="{x:.1}" y2="{bottom}" stroke="#e6e6e6"/>"##
        ));
        c.text_if_free(x, bottom + 20.0, Anchor::Middle, NORMAL, &short_rate(*t));
    }
    c.text(
        (left + right) / 2.0,
        bottom + 40.0,
        Anchor::Middle,
        NORMAL,
        "",
        "bandwidth (bits per second, log scale)",
    );
    c.vertical_text(
        MARGIN + line_height(NORMAL) / 2.0,
        PLOT_TOP + PLOT_H / 2.0,
        NORMAL,
        "pull time (log scale)",
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let (colour, dash) = style(i);
        let mut pts: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|p| positive(p.0) && positive(p.1))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let line: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let mut g = format!(
            r#"<g class="series"><polyline fill="none" stroke="{colour}" stroke-width="2"{} points="{}"/>"#,
            dash_attr(dash),
            line.join(" ")
        );
        for (x, y) in &pts {
            g.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}: {} at {}bit/s</title></circle>"#,
                px(*x),
                py(*y),
                esc(name),
                seconds_label(*y),
                short_rate(*x)
            ));
        }
        g.push_str("</g>\n");
        c.shape(&g);
    }
    let entries: Vec<(Swatch, &str)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (colour, dash) = style(i);
            (Swatch::Line(colour, dash), s.0.as_str())
        })
        .collect();
    let end = legend(&mut c, MARGIN, bottom + 54.0, width - MARGIN, &entries);
    c.finish(width, end + 8.0)
}

/// Series names for images: each image's reference, with what it was loaded
/// from (`spec`) added where two references are the same. Takes (spec,
/// reference) pairs.
pub fn image_names(images: &[(&str, &str)]) -> Vec<String> {
    images
        .iter()
        .map(|(spec, reference)| {
            let shared = images.iter().filter(|(_, r)| r == reference).count() > 1;
            if shared && spec != reference {
                format!("{reference} ({spec})")
            } else {
                reference.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polyline_and_a_legend_entry_per_series_on_log_axes() {
        let chart = bandwidth_sweep(
            "t",
            &[
                ("a".into(), vec![(1.25e6, 10.0), (1.25e8, 0.5)]),
                ("b".into(), vec![(1.25e6, 20.0)]),
            ],
        );
        assert_eq!(chart.svg.matches("<polyline").count(), 2);
        assert!(chart.svg.starts_with("<svg") && chart.svg.trim_end().ends_with("</svg>"));
        for label in ["10M", "1G", "0.5 s", "1 s", "10 s", "20 s", "a", "b"] {
            assert!(
                chart.texts.iter().any(|t| t.text == label),
                "{label} in {:?}",
                chart.texts
            );
        }
        // Log time: 1 s lies midway between 0.5 s and 2 s, and 1 s to 2 s is as
        // far as 10 s to 20 s.
        let y = |label: &str| chart.texts.iter().find(|t| t.text == label).unwrap().y;
        assert!((y("1 s") - (y("0.5 s") + y("2 s")) / 2.0).abs() < 0.5);
        assert!(((y("2 s") - y("1 s")) - (y("20 s") - y("10 s"))).abs() < 0.5);
    }

    #[test]
    fn names_are_references_told_apart_by_their_files_when_the_same() {
        let names = image_names(&[
            ("a.json", "nginx:1"),
            ("b.json", "nginx:1"),
            ("redis:7", "redis:7"),
        ]);
        assert_eq!(names, ["nginx:1 (a.json)", "nginx:1 (b.json)", "redis:7"]);
    }
}
