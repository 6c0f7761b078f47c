//! The waterfall of one pull: a row per layer on a time axis, the network on
//! top (time to first byte, then the transfer) and the CPU work beneath. In
//! staged mode (and for pullers that unpack after downloading) the CPU work
//! follows the download, so it is drawn where it happened: verify, decompress,
//! extract, ending when the layer was applied. In streaming mode it overlaps
//! the download and only its busy time is known, so the row shows when the
//! layer's CPU work was under way, and a panel on the right how much of it
//! there was, per phase.

use crate::oci::record::{LayerRun, PullRecord};

use super::axis::{linear_ticks, tick_label};
use super::text::{
    Anchor, Canvas, Chart, NORMAL, Swatch, TITLE, legend, legend_entry_width, text_width,
};

const MIN_WIDTH: f64 = 960.0;
const MARGIN: f64 = 12.0;
const ROW_H: f64 = 26.0;
/// Width of the CPU busy panel (streaming mode).
const INSET_W: f64 = 190.0;
/// Between the timeline and the panel.
const INSET_GAP: f64 = 40.0;

/// Colours per phase.
pub const COLOURS: &[(&str, &str)] = &[
    ("resolve", "#9e9e9e"),
    ("ttfb", "#bbdefb"),
    ("download", "#1e88e5"),
    ("verify", "#8e24aa"),
    ("decompress", "#fb8c00"),
    ("extract", "#43a047"),
];

/// The band of a streaming layer whose CPU work was under way.
const UNDER_WAY: (&str, &str) = ("CPU work under way", "#ffe0b2");

fn colour(name: &str) -> &'static str {
    COLOURS
        .iter()
        .chain([&UNDER_WAY])
        .find(|(n, _)| *n == name)
        .map_or("#000000", |(_, c)| c)
}

/// True for records whose CPU work overlaps the download: pulltime's streaming
/// mode, measured (`streaming`) or simulated (policy `pulltime`).
pub fn is_streaming(record: &PullRecord) -> bool {
    matches!(record.settings.mode.as_str(), "streaming" | "pulltime")
}

/// The waterfall of run `run` (0-based) of `record` as SVG; `None` when the
/// record has no such run.
pub fn waterfall(record: &PullRecord, run: usize) -> Option<String> {
    waterfall_chart(record, run).map(|c| c.svg)
}

/// CPU busy phases of a layer, in the order they are drawn.
fn busy(l: &LayerRun) -> [(&'static str, Option<f64>); 3] {
    [
        ("verify", l.verify_s),
        ("decompress", l.decompress_s),
        ("extract", l.extract_s),
    ]
}

/// An axis from 0 past `span` seconds: its ticks (in seconds), their labels
/// and the unit they are in (milliseconds for spans under a second).
fn time_axis(span: f64, ticks: f64) -> (Vec<f64>, Vec<String>, &'static str) {
    let t = linear_ticks(span, ticks);
    let (scale, unit) = if t[t.len() - 1] < 1.0 {
        (1e3, "milliseconds")
    } else {
        (1.0, "seconds")
    };
    let step = (t[1] - t[0]) * scale;
    let labels = t.iter().map(|v| tick_label(v * scale, step)).collect();
    (t, labels, unit)
}

/// The waterfall of run `run` of `record`: a `<g class="layer">` per layer.
pub fn waterfall_chart(record: &PullRecord, run: usize) -> Option<Chart> {
    let r = record.runs.get(run)?;
    let streaming = is_streaming(record);
    let kind = if record.simulated {
        "simulated"
    } else {
        "measured"
    };
    let title = record.image.reference.as_str();
    let subtitle = format!(
        "{kind}, {} mode, run {} of {}: the pull took {:.3} s",
        record.settings.mode,
        run + 1,
        record.runs.len(),
        r.wall_s
    );
    let note = if streaming {
        "streaming: CPU work overlaps the download; the band shows while it was under way, the panel on the right how long each phase kept a CPU busy"
    } else {
        "CPU work drawn where it happened: after the layer's download, ending when the layer was applied"
    };
    let labels: Vec<String> = r
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "#{i} {} ({})",
                crate::report::short_digest(&l.digest),
                crate::report::human_bytes(l.compressed_bytes)
            )
        })
        .collect();
    let mut phases: Vec<(&str, &str)> = COLOURS.to_vec();
    if streaming {
        phases.insert(3, UNDER_WAY);
    }
    let width = [
        MIN_WIDTH,
        text_width(title, TITLE) + 2.0 * MARGIN,
        text_width(&subtitle, NORMAL) + 2.0 * MARGIN,
        text_width(note, NORMAL) + 2.0 * MARGIN,
    ]
    .into_iter()
    .chain(
        phases
            .iter()
            .map(|p| legend_entry_width(p.0) + 2.0 * MARGIN),
    )
    .fold(0.0, f64::max);
    let label_w = labels
        .iter()
        .map(String::as_str)
        .chain(["resolve"])
        .map(|l| text_width(l, NORMAL))
        .fold(0.0, f64::max);
    let left = MARGIN + label_w + 12.0;
    let inset_x0 = width - MARGIN - INSET_W;
    let right = if streaming {
        inset_x0 - INSET_GAP
    } else {
        width - MARGIN - 24.0
    };

    let mut c = Canvas::new();
    c.text(MARGIN, 22.0, Anchor::Start, TITLE, "", title);
    c.text(MARGIN, 42.0, Anchor::Start, NORMAL, "", &subtitle);
    c.text(
        MARGIN,
        60.0,
        Anchor::Start,
        NORMAL,
        r##"fill="#555555""##,
        note,
    );
    let entries: Vec<(Swatch, &str)> = phases.iter().map(|(n, c)| (Swatch::Fill(c), *n)).collect();
    let top = legend(&mut c, MARGIN, 70.0, width - MARGIN, &entries) + 8.0;

    let (ticks, tick_labels, unit) = time_axis(r.wall_s.max(1e-6), 8.0);
    let domain = ticks[ticks.len() - 1];
    let x = |t: f64| left + (right - left) * (t / domain).clamp(0.0, 1.0);
    let rows_end = top + ROW_H * (r.layers.len() as f64 + 1.0);
    let axis_y = rows_end + 6.0;
    draw_time_axis(
        &mut c,
        (&ticks, &tick_labels),
        &x,
        (left, right),
        (top, axis_y),
        &format!("{unit} since the pull started"),
    );

    c.shape(r#"<g class="resolve">"#);
    c.text(MARGIN, top + 17.0, Anchor::Start, NORMAL, "", "resolve");
    c.shape(&bar(
        x(0.0),
        x(r.resolve_s),
        top + 5.0,
        14.0,
        "resolve",
        r.resolve_s,
    ));
    c.shape("</g>\n");
    for (i, (l, label)) in r.layers.iter().zip(&labels).enumerate() {
        let y = top + ROW_H * (i as f64 + 1.0);
        c.shape(&format!(
            r#"<g class="layer" data-digest="{}">"#,
            super::esc(&l.digest)
        ));
        c.text(MARGIN, y + 17.0, Anchor::Start, NORMAL, "", label);
        // Phases a puller did not let us observe are not drawn.
        let ttfb = l.ttfb_s.unwrap_or(0.0);
        let ttfb_end = l.start_s + ttfb;
        if l.ttfb_s.is_some() {
            c.shape(&bar(x(l.start_s), x(ttfb_end), y + 3.0, 9.0, "ttfb", ttfb));
        }
        if let Some(download) = l.download_s {
            let end = l.start_s + download;
            c.shape(&bar(
                x(ttfb_end),
                x(end),
                y + 3.0,
                9.0,
                "download",
                download - ttfb,
            ));
        }
        let phases = busy(l);
        if streaming {
            if phases.iter().any(|p| p.1.is_some()) {
                let d = l.end_s - ttfb_end;
                c.shape(&bar(x(ttfb_end), x(l.end_s), y + 13.0, 9.0, UNDER_WAY.0, d));
            }
        } else {
            // Stacked back from where the layer was applied.
            let mut end = l.end_s;
            for (name, d) in phases.iter().rev() {
                let Some(d) = *d else { continue };
                let start = (end - d).max(l.start_s);
                c.shape(&bar(x(start), x(end), y + 13.0, 9.0, name, d));
                end = start;
            }
        }
        c.shape("</g>\n");
    }
    if streaming {
        inset(&mut c, r, top, axis_y, inset_x0);
    }
    Some(c.finish(width, axis_y + 48.0))
}

/// The CPU busy panel: per layer, its verify, decompress and extract seconds
/// side by side on a shared axis starting at `x0`.
fn inset(c: &mut Canvas, r: &crate::oci::record::RunRecord, top: f64, axis_y: f64, x0: f64) {
    let x1 = x0 + INSET_W - 20.0;
    let most = r
        .layers
        .iter()
        .map(|l| busy(l).iter().filter_map(|p| p.1).sum::<f64>())
        .fold(0.0, f64::max);
    let (ticks, labels, unit) = time_axis(most.max(1e-6), 3.0);
    let domain = ticks[ticks.len() - 1];
    let x = |t: f64| x0 + (x1 - x0) * (t / domain).clamp(0.0, 1.0);
    c.text(
        x0,
        top + 17.0,
        Anchor::Start,
        NORMAL,
        "",
        "CPU busy per layer",
    );
    draw_time_axis(
        c,
        (&ticks, &labels),
        &x,
        (x0, x1),
        (top + ROW_H, axis_y),
        &format!("busy {unit}"),
    );
    for (i, l) in r.layers.iter().enumerate() {
        let y = top + ROW_H * (i as f64 + 1.0);
        let mut at = 0.0;
        c.shape(r#"<g class="busy">"#);
        for (name, d) in busy(l) {
            let Some(d) = d else { continue };
            c.shape(&bar(x(at), x(at + d), y + 6.0, 14.0, name, d));
            at += d;
        }
        c.shape("</g>\n");
    }
}

fn bar(x0: f64, x1: f64, y: f64, h: f64, phase: &str, seconds: f64) -> String {
    let w = (x1 - x0).max(if seconds > 0.0 { 1.0 } else { 0.0 });
    format!(
        r#"<rect class="{}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h}" fill="{}"><title>{phase} {}</title></rect>"#,
        phase.replace(' ', "-"),
        colour(phase),
        super::fmt_s(seconds)
    )
}

/// A time axis under a panel: a grey grid line from `grid_top` down to the axis
/// at each tick, the tick labels that fit, the axis line from `left` to `right`
/// and its title centred under it.
fn draw_time_axis(
    c: &mut Canvas,
    (ticks, labels): (&[f64], &[String]),
    x: &dyn Fn(f64) -> f64,
    (left, right): (f64, f64),
    (grid_top, axis_y): (f64, f64),
    title: &str,
) {
    for (t, label) in ticks.iter().zip(labels) {
        c.shape(&format!(
            r##"<line x1="{0:.1}" y1="{grid_top:.1}" x2="{0:.1}" y2="{axis_y:.1}" stroke="#e0e0e0"/>"##,
            x(*t)
        ));
        c.text_if_free(x(*t), axis_y + 16.0, Anchor::Middle, NORMAL, label);
    }
    c.shape(&format!(
        r##"<line x1="{left:.1}" y1="{axis_y:.1}" x2="{right:.1}" y2="{axis_y:.1}" stroke="#000000"/>"##
    ));
    c.text(
        (left + right) / 2.0,
        axis_y + 36.0,
        Anchor::Middle,
        NORMAL,
        "",
        title,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(policy: crate::sim::Policy) -> PullRecord {
        use crate::oci::media_type::Compression;
        use crate::sim::{Scenario, input::from_profile, simulate_record};
        let profile = crate::synth::ImageProfile::load("sn-compose-post-original").unwrap();
        let image = from_profile(&profile, 0.01, Compression::Gzip);
        let scenario = Scenario {
            network: crate::profiles::network::NetworkProfile::load("lan-1g").unwrap(),
            host: crate::profiles::host::HostProfile::builtin(),
            policy,
            max_concurrent_downloads: 3,
            dockerhub_flow: false,
            index: false,
            registry_on_host: false,
        };
        simulate_record(&image, &scenario, vec![]).unwrap()
    }

    #[test]
    fn a_row_per_layer_and_no_chart_for_a_missing_run() {
        let mut r = record(crate::sim::Policy::Staged);
        let layers = r.runs[0].layers.len();
        let svg = waterfall(&r, 0).unwrap();
        assert_eq!(svg.matches(r#"<g class="layer""#).count(), layers);
        assert!(waterfall(&r, 1).is_none());
        r.runs.clear();
        assert!(waterfall(&r, 0).is_none(), "no runs: no chart, no panic");
    }

    #[test]
    fn streaming_cpu_work_gets_a_band_and_a_busy_panel_staged_work_its_place() {
        let streaming = waterfall_chart(&record(crate::sim::Policy::Pulltime), 0).unwrap();
        let staged = waterfall_chart(&record(crate::sim::Policy::Staged), 0).unwrap();
        let layers = streaming.svg.matches(r#"<g class="layer""#).count();
        assert!(layers > 1);
        assert_eq!(streaming.svg.matches(r#"<g class="busy">"#).count(), layers);
        assert_eq!(
            streaming
                .svg
                .matches(r#"class="CPU-work-under-way""#)
                .count(),
            layers
        );
        assert!(
            streaming
                .texts
                .iter()
                .any(|t| t.text == "CPU busy per layer")
        );
        assert!(!staged.svg.contains(r#"class="busy""#));
        assert!(!staged.svg.contains("under-way"));
        assert_eq!(
            staged.svg.matches(r#"<rect class="extract""#).count(),
            layers
        );
    }

    #[test]
    fn the_last_tick_is_at_or_past_the_end_in_the_unit_of_the_axis_title() {
        let (t, labels, unit) = time_axis(0.37, 8.0);
        assert_eq!(unit, "milliseconds");
        assert!(*t.last().unwrap() >= 0.37);
        assert_eq!(labels.last().unwrap(), "400");
        let (t, labels, unit) = time_axis(12.3, 8.0);
        assert_eq!(unit, "seconds");
        assert!(*t.last().unwrap() >= 12.3);
        assert_eq!(labels[..3], ["0", "2", "4"]);
    }
}
