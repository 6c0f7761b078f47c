//! A picture of why pull time falls less than size: for each bandwidth, one
//! horizontal bar per image, its critical path split by resource (network,
//! inflate CPU, extraction per entry, ...; [`crate::sim::bounds`]), on a scale
//! shared by the bandwidth's bars (each ending with its share of the first
//! image's pull time), so that the bars of a smaller image show which parts
//! shrank and which did not.

use std::fmt::Write as _;

use super::axis::fmt_s;
use super::text::esc;
use super::text::{
    Anchor, BOLD, Canvas, Chart, NORMAL, Swatch, TITLE, legend, legend_entry_width, text_width,
};

const MIN_WIDTH: f64 = 960.0;
const MARGIN: f64 = 12.0;
const PLOT_W: f64 = 590.0;
const BAR_H: f64 = 18.0;
const ROW_GAP: f64 = 6.0;
const GROUP_GAP: f64 = 26.0;
const TOP: f64 = 60.0;

/// Colours per resource (the names [`crate::sim::bounds`] gives).
const RESOURCES: &[(&str, &str)] = &[
    ("resolve (token, manifest, config)", "#9e9e9e"),
    ("network", "#1e88e5"),
    ("hashing", "#8e24aa"),
    ("inflate CPU", "#fb8c00"),
    ("extraction per byte", "#81c784"),
    ("inflate + write per byte", "#c0ca33"),
    ("extraction per entry", "#2e7d32"),
    ("per-layer overhead", "#6d4c41"),
    ("snapshot copy", "#e53935"),
    ("finish (image metadata)", "#607d8b"),
    ("waiting between stages", "#cfd8dc"),
];

fn colour(name: &str) -> &'static str {
    RESOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("#000000", |(_, c)| c)
}

/// One group per bandwidth label: (image label, critical path by resource).
pub type Group = (String, Vec<(String, Vec<(&'static str, f64)>)>);

/// `groups` with the bars of each named by `names`, in order (image references
/// for the labels the bars were made with).
pub fn renamed(groups: &[Group], names: &[String]) -> Vec<Group> {
    groups
        .iter()
        .map(|(label, bars)| {
            let bars = bars
                .iter()
                .zip(names)
                .map(|((_, path), name)| (name.clone(), path.clone()))
                .collect();
            (label.clone(), bars)
        })
        .collect()
}

/// The chart as SVG: see [`critical_paths_chart`].
pub fn critical_paths(title: &str, groups: &[Group]) -> String {
    critical_paths_chart(title, groups).svg
}

/// The chart. Each group's bars are scaled to its longest; each bar ends with
/// its seconds and its share of the first bar's. Image labels are drawn in
/// full: the label column (and the canvas) widens for long ones.
pub fn critical_paths_chart(title: &str, groups: &[Group]) -> Chart {
    const NOTE: &str = "critical path by resource; at each bandwidth the bars share a scale, and each ends with its share of the first image's time";
    let used: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.0)
        .filter(|r| {
            groups
                .iter()
                .flat_map(|g| &g.1)
                .any(|b| b.1.iter().any(|p| p.0 == *r && p.1 > 0.0))
        })
        .collect();
    let label_w = groups
        .iter()
        .flat_map(|g| &g.1)
        .map(|b| text_width(&b.0, NORMAL))
        .fold(0.0, f64::max);
    let left = MARGIN + label_w + 8.0;
    // Room after the longest bar for its value: "1234 ms (1234%)".
    let value_w = text_width("1234 ms (12345%)", NORMAL) + 6.0;
    let width = [
        MIN_WIDTH,
        left + PLOT_W + value_w + MARGIN,
        text_width(title, TITLE) + 2.0 * MARGIN,
        text_width(NOTE, NORMAL) + 2.0 * MARGIN,
    ]
    .into_iter()
    .chain(groups.iter().map(|g| text_width(&g.0, BOLD) + 2.0 * MARGIN))
    .chain(used.iter().map(|u| legend_entry_width(u) + 2.0 * MARGIN))
    .fold(0.0, f64::max);
    let plot_w = width - left - value_w - MARGIN;
    let mut c = Canvas::new();
    c.heading(MARGIN, title, &[NOTE]);
    let mut y = TOP;
    for (label, bars) in groups {
        c.text(MARGIN, y + 12.0, Anchor::Start, BOLD, "", label);
        y += GROUP_GAP - 6.0;
        let first: f64 = bars
            .first()
            .map_or(0.0, |b| b.1.iter().map(|p| p.1).sum::<f64>())
            .max(1e-12);
        // Scaled so the longest bar of the group fits.
        let longest = bars
            .iter()
            .map(|b| b.1.iter().map(|p| p.1).sum::<f64>())
            .fold(first, f64::max);
        for (image, path) in bars {
            let total: f64 = path.iter().map(|p| p.1).sum();
            c.shape(r#"<g class="bar">"#);
            c.text(left - 8.0, y + 13.0, Anchor::End, NORMAL, "", image);
            let mut x = left;
            for (name, secs) in path.iter().filter(|p| p.1 > 0.0) {
                let w = plot_w * secs / longest;
                let mut part = String::new();
                let _ = write!(
                    part,
                    r#"<rect class="part" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{BAR_H}" fill="{}"><title>{}: {}</title></rect>"#,
                    colour(name),
                    esc(name),
                    fmt_s(*secs)
                );
                c.shape(&part);
                x += w;
            }
            c.text(
                x + 6.0,
                y + 13.0,
                Anchor::Start,
                NORMAL,
                "",
                &format!("{} ({:.0}%)", fmt_s(total), 100.0 * total / first),
            );
            c.shape("</g>\n");
            y += BAR_H + ROW_GAP;
        }
        y += 6.0;
    }
    let entries: Vec<(Swatch, &str)> = used.iter().map(|u| (Swatch::Fill(colour(u)), *u)).collect();
    let end = legend(&mut c, MARGIN, y + 10.0, width - MARGIN, &entries);
    c.finish(width, end + 8.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_per_image_a_part_per_resource_and_a_legend_for_what_is_used() {
        let groups: Vec<Group> = vec![
            (
                "100 Mbit/s".into(),
                vec![
                    (
                        "original".into(),
                        vec![("network", 4.0), ("inflate CPU", 1.0)],
                    ),
                    ("multi-stage".into(), vec![("network", 1.0)]),
                ],
            ),
            (
                "10 Gbit/s".into(),
                vec![
                    ("original".into(), vec![("extraction per entry", 2.0)]),
                    ("multi-stage".into(), vec![("extraction per entry", 1.5)]),
                ],
            ),
        ];
        let svg = critical_paths("t", &groups);
        assert_eq!(svg.matches(r#"class="bar""#).count(), 4);
        assert_eq!(svg.matches(r#"class="part""#).count(), 5);
        assert!(
            svg.contains("(75%)"),
            "the smaller image's share of the first"
        );
        assert!(svg.contains(">inflate CPU</text>") && !svg.contains(">snapshot copy</text>"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let names = ["nginx:1".to_string(), "nginx:1-slim".to_string()];
        let named = renamed(&groups, &names);
        assert_eq!(named[1].0, "10 Gbit/s");
        assert_eq!(named[1].1[1].0, "nginx:1-slim");
        assert_eq!(named[1].1[1].1, groups[1].1[1].1);
    }
}
