//! A picture of why pull time falls less than size: for each bandwidth, one
//! horizontal bar per image, its critical path split by resource (network,
//! inflate CPU, extraction per entry, ...; [`crate::sim::bounds`]), on a scale
//! of the first image's pull time at that bandwidth, so that the bars of a
//! smaller image show which parts shrank and which did not.

use std::fmt::Write as _;

use super::svg::{esc, fmt_s};

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 250.0;
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

/// The chart. Each group's bars are scaled to its first bar's total; each bar
/// ends with its seconds and its share of the first.
pub fn critical_paths(title: &str, groups: &[Group]) -> String {
    let plot_w = WIDTH - LABEL_W - 120.0;
    let rows: usize = groups.iter().map(|g| g.1.len()).sum();
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
    let legend_rows = used.len().div_ceil(3);
    let height = TOP
        + rows as f64 * (BAR_H + ROW_GAP)
        + groups.len() as f64 * GROUP_GAP
        + 30.0
        + 20.0 * legend_rows as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="22" font-size="14" font-weight="bold">{}</text><text x="10" y="42" fill="#555">critical path by resource; bars scaled to the first image's pull time at each bandwidth</text>"##,
        esc(title)
    );
    let mut y = TOP;
    for (label, bars) in groups {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}" font-weight="bold">{}</text>"#,
            y + 12.0,
            esc(label)
        );
        y += GROUP_GAP - 6.0;
        let first: f64 = bars
            .first()
            .map_or(0.0, |b| b.1.iter().map(|p| p.1).sum::<f64>())
            .max(1e-12);
        for (image, path) in bars {
            let total: f64 = path.iter().map(|p| p.1).sum();
            let _ = writeln!(
                s,
                r#"<g class="bar"><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LABEL_W - 8.0,
                y + 13.0,
                esc(&shorten(image, 36))
            );
            let mut x = LABEL_W;
            // Scaled so the longest bar of the group fits.
            let longest = bars
                .iter()
                .map(|b| b.1.iter().map(|p| p.1).sum::<f64>())
                .fold(first, f64::max);
            for (name, secs) in path.iter().filter(|p| p.1 > 0.0) {
                let w = plot_w * secs / longest;
                let _ = writeln!(
                    s,
                    r#"<rect class="part" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{BAR_H}" fill="{}"><title>{}: {}</title></rect>"#,
                    colour(name),
                    esc(name),
                    fmt_s(*secs)
                );
                x += w;
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{} ({:.0}%)</text></g>"#,
                x + 6.0,
                y + 13.0,
                fmt_s(total),
                100.0 * total / first
            );
            y += BAR_H + ROW_GAP;
        }
        y += 6.0;
    }
    y += 10.0;
    for (i, name) in used.iter().enumerate() {
        let (col, row) = (i % 3, i / 3);
        let x = 10.0 + col as f64 * 310.0;
        let yy = y + row as f64 * 20.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{yy:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            colour(name),
            x + 18.0,
            yy + 10.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `…` and the last `max - 1` characters of a long label (file names end in
/// what tells them apart).
fn shorten(label: &str, max: usize) -> String {
    let n = label.chars().count();
    if n <= max {
        return label.to_string();
    }
    let tail: String = label.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
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
        assert_eq!(shorten("abcdef", 4), "…def");
    }
}
