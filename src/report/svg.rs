//! SVG pictures written by hand: a waterfall of one pull (one row per layer,
//! coloured bars per phase on a time axis) and line charts (pull time against
//! bandwidth). Text uses the generic `sans-serif` family, so no font files are
//! needed to write or view them.

use std::fmt::Write as _;

use crate::oci::record::PullRecord;

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 220.0;
const ROW_H: f64 = 26.0;
const TOP: f64 = 56.0;

/// Colours per phase.
pub const COLOURS: &[(&str, &str)] = &[
    ("resolve", "#9e9e9e"),
    ("ttfb", "#bbdefb"),
    ("download", "#1e88e5"),
    ("verify", "#8e24aa"),
    ("decompress", "#fb8c00"),
    ("extract", "#43a047"),
];

fn colour(name: &str) -> &'static str {
    COLOURS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("#000000", |(_, c)| c)
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round axis step for `span` seconds (about 8 ticks).
fn tick_step(span: f64) -> f64 {
    let raw = (span / 8.0).max(1e-6);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// The waterfall of run `run` of `record`: a `<g class="layer">` per layer with a
/// network bar (time to first byte, then transfer) and, beneath it, the CPU work
/// (verify, decompress, extract) ending when the layer was applied. `None` when
/// the record has no run `run` (0-based).
pub fn waterfall(record: &PullRecord, run: usize) -> Option<String> {
    let r = record.runs.get(run)?;
    let span = r.wall_s.max(1e-6);
    let plot_w = WIDTH - LABEL_W - 20.0;
    let x = |t: f64| LABEL_W + plot_w * (t / span).clamp(0.0, 1.0);
    let height = TOP + ROW_H * (r.layers.len() as f64 + 1.0) + 60.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let kind = if record.simulated {
        "simulated"
    } else {
        "measured"
    };
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">{} ({kind}, {} mode, run {} of {}): {:.3} s</text>"#,
        esc(&record.image.reference),
        esc(&record.settings.mode),
        run + 1,
        record.runs.len(),
        r.wall_s
    );
    // Legend.
    let mut lx = 10.0;
    for (name, c) in COLOURS {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="30" width="12" height="12" fill="{c}"/><text x="{}" y="40">{name}</text>"#,
            lx + 16.0
        );
        lx += 30.0 + 7.0 * name.len() as f64;
    }
    // Grid and axis.
    let step = tick_step(span);
    let axis_y = TOP + ROW_H * (r.layers.len() as f64 + 1.0) + 8.0;
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{axis_y}" stroke="#e0e0e0"/><text x="{0:.1}" y="{1}" text-anchor="middle">{2}</text>"##,
            x(t),
            axis_y + 16.0,
            fmt_s(t)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since the pull started</text>"#,
        LABEL_W + plot_w / 2.0,
        axis_y + 34.0
    );
    // Resolve row.
    let _ = writeln!(
        s,
        r#"<g class="resolve"><text x="10" y="{}">resolve</text>{}</g>"#,
        TOP + 17.0,
        bar(
            x(0.0),
            x(r.resolve_s),
            TOP + 5.0,
            14.0,
            "resolve",
            r.resolve_s
        )
    );
    for (i, l) in r.layers.iter().enumerate() {
        let y = TOP + ROW_H * (i as f64 + 1.0);
        let mut g = String::new();
        let _ = write!(
            g,
            r#"<g class="layer" data-digest="{}"><text x="10" y="{}">#{i} {} ({})</text>"#,
            esc(&l.digest),
            y + 17.0,
            esc(crate::report::short_digest(&l.digest)),
            esc(&crate::report::human_bytes(l.compressed_bytes))
        );
        // Phases a puller did not let us observe are not drawn.
        let ttfb = l.ttfb_s.unwrap_or(0.0);
        let ttfb_end = l.start_s + ttfb;
        if l.ttfb_s.is_some() {
            g.push_str(&bar(x(l.start_s), x(ttfb_end), y + 3.0, 9.0, "ttfb", ttfb));
        }
        if let Some(download) = l.download_s {
            g.push_str(&bar(
                x(ttfb_end),
                x(l.start_s + download),
                y + 3.0,
                9.0,
                "download",
                download - ttfb,
            ));
        }
        // CPU work, stacked to end where the layer was applied.
        let mut end = l.end_s;
        for (name, d) in [
            ("extract", l.extract_s),
            ("decompress", l.decompress_s),
            ("verify", l.verify_s),
        ] {
            let Some(d) = d else { continue };
            let start = (end - d).max(l.start_s);
            g.push_str(&bar(x(start), x(end), y + 13.0, 9.0, name, d));
            end = start;
        }
        g.push_str("</g>\n");
        s.push_str(&g);
    }
    s.push_str("</svg>\n");
    Some(s)
}

fn bar(x0: f64, x1: f64, y: f64, h: f64, phase: &str, seconds: f64) -> String {
    let w = (x1 - x0).max(if seconds > 0.0 { 1.0 } else { 0.0 });
    format!(
        r#"<rect class="{phase}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h}" fill="{}"><title>{phase} {}</title></rect>"#,
        colour(phase),
        fmt_s(seconds)
    )
}

/// `100M`, `1G`, `2.5G`: bits per second, short enough for an axis.
fn short_rate(bytes_per_s: f64) -> String {
    let bits = bytes_per_s * 8.0;
    let (v, unit) = if bits >= 1e9 {
        (bits / 1e9, "G")
    } else if bits >= 1e6 {
        (bits / 1e6, "M")
    } else {
        (bits / 1e3, "k")
    };
    let n = format!("{v:.1}");
    format!("{}{unit}", n.trim_end_matches(".0"))
}

pub(crate) fn fmt_s(t: f64) -> String {
    if t >= 10.0 {
        format!("{t:.0} s")
    } else if t >= 1.0 {
        format!("{t:.1} s")
    } else {
        format!("{:.0} ms", t * 1e3)
    }
}

/// A line chart: one polyline per series of (x, y) points; x on a log scale when
/// `log_x` (bandwidth sweeps).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> String {
    let (w, h, left, bottom, top, right) = (WIDTH, 520.0, 80.0, 60.0, 50.0, 280.0);
    let pts = series.iter().flat_map(|(_, p)| p.iter().copied());
    let (mut xmin, mut xmax, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
    for (px, py) in pts {
        xmin = xmin.min(px);
        xmax = xmax.max(px);
        ymax = ymax.max(py);
    }
    if !xmin.is_finite() {
        (xmin, xmax) = (1.0, 10.0);
    }
    let fx = |v: f64| if log_x { v.max(1e-12).log10() } else { v };
    let (a, b) = (fx(xmin), fx(xmax).max(fx(xmin) + 1e-9));
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    let px = |v: f64| left + (w - left - right) * (fx(v) - a) / (b - a);
    let py = |v: f64| h - bottom - (h - bottom - top) * v / ymax;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="22" font-size="14" font-weight="bold">{}</text>"##,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#000"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#000"/>"##,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    let step = tick_step(ymax);
    let mut t = 0.0;
    while t <= ymax {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eeeeee"/><text x="{2}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            py(t),
            w - right,
            left - 6.0,
            py(t) + 4.0,
            fmt_s(t)
        );
        t += step;
    }
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for v in xs {
        let label = if log_x { short_rate(v) } else { format!("{v}") };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(v),
            h - bottom + 16.0,
            esc(&label)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + (w - left - right) / 2.0,
        h - 14.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        h / 2.0,
        h / 2.0,
        esc(y_label)
    );
    let palette = [
        "#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b",
    ];
    for (i, (name, p)) in series.iter().enumerate() {
        let c = palette[i % palette.len()];
        let points: Vec<String> = p
            .iter()
            .map(|(vx, vy)| format!("{:.1},{:.1}", px(*vx), py(*vy)))
            .collect();
        let _ = writeln!(
            s,
            r#"<g class="series"><polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for (vx, vy) in p {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {}</title></circle>"#,
                px(*vx),
                py(*vy),
                esc(name),
                fmt_s(*vy)
            );
        }
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{c}"/><text x="{}" y="{}">{}</text></g>"#,
            w - right + 16.0,
            top + 20.0 * i as f64,
            w - right + 32.0,
            top + 10.0 + 20.0 * i as f64,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(1.0), 0.2);
        assert_eq!(tick_step(60.0), 10.0);
        assert!((tick_step(0.05) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn waterfall_draws_a_row_per_layer_and_refuses_a_missing_run() {
        use crate::oci::media_type::Compression;
        use crate::sim::{Policy, Scenario, input::from_profile, simulate_record};
        let profile = crate::synth::ImageProfile::load("sn-compose-post-original").unwrap();
        let image = from_profile(&profile, 0.01, Compression::Gzip);
        let scenario = Scenario {
            network: crate::profiles::network::NetworkProfile::load("lan-1g").unwrap(),
            host: crate::sim::model::tests::instant_host(0.0),
            policy: Policy::Pulltime,
            max_concurrent_downloads: 3,
            dockerhub_flow: false,
            index: false,
            registry_on_host: false,
        };
        let mut record = simulate_record(&image, &scenario, vec![]).unwrap();
        let svg = waterfall(&record, 0).unwrap();
        assert_eq!(svg.matches("class=\"layer\"").count(), image.layers.len());
        assert!(waterfall(&record, 1).is_none());
        record.runs.clear();
        assert!(
            waterfall(&record, 0).is_none(),
            "no runs: no chart, no panic"
        );
    }

    #[test]
    fn line_chart_has_a_polyline_per_series() {
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[
                ("a".into(), vec![(1e6, 1.0), (1e7, 0.5)]),
                ("b".into(), vec![(1e6, 2.0)]),
            ],
            true,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
