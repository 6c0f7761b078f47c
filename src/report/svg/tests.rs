//! Every chart kind, hard cases included, laid out without overlapping or
//! clipped texts, and rendered by resvg: the SVG parses and draws, and (with
//! DejaVu Sans, the fonts-dejavu-core package) every text as laid out by a
//! real font lies inside the box the chart estimated for it.

use std::path::Path;

use resvg::{tiny_skia, usvg};

use super::why::{Group, critical_paths_chart};
use super::{Chart, bandwidth_sweep, waterfall_chart};
use crate::oci::media_type::Compression;
use crate::oci::record::PullRecord;
use crate::sim::{Policy, Scenario, SimImage, SimLayer, simulate_at_bandwidth, simulate_record};

const LONG: &str = "registry.example.com:5000/team/very-long-name:2024-01-01-abcdef";
const FONTS: &str = "/usr/share/fonts/truetype/dejavu";

fn image(layers: usize) -> SimImage {
    SimImage {
        name: LONG.into(),
        layers: (0..layers)
            .map(|i| SimLayer {
                digest: format!("sha256:{i:04}{}", "ab".repeat(30)),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                compressed: 3_000_000 + 7_000_000 * (i as u64 % 5),
                uncompressed: 9_000_000 + 20_000_000 * (i as u64 % 5),
                file_bytes: 8_000_000 + 20_000_000 * (i as u64 % 5),
                files: 200 + 300 * (i as u64 % 3),
                dirs: 40,
                compression: Compression::Gzip,
                cached: false,
            })
            .collect(),
        manifest_bytes: 1500,
        config_bytes: 2000,
        estimated: Vec::new(),
    }
}

fn scenario(policy: Policy) -> Scenario {
    Scenario {
        network: crate::profiles::network::NetworkProfile::load("lan-1g").unwrap(),
        host: crate::profiles::host::HostProfile::builtin(),
        policy,
        max_concurrent_downloads: 3,
        dockerhub_flow: false,
        index: false,
        registry_on_host: false,
    }
}

fn record(layers: usize, policy: Policy) -> PullRecord {
    simulate_record(&image(layers), &scenario(policy), vec![]).unwrap()
}

/// Every chart kind in its hard cases, named.
fn charts() -> Vec<(String, Chart)> {
    let mut out = Vec::new();
    // Waterfalls: 1 and 40 layers, streaming (simulated and as measured),
    // staged, and another puller's.
    let mut measured = record(12, Policy::Pulltime);
    measured.simulated = false;
    measured.settings.mode = "streaming".into();
    let mut short = record(3, Policy::Staged);
    short.image.reference = "a".into();
    let records = [
        ("streaming, 1 layer", record(1, Policy::Pulltime)),
        ("streaming, 40 layers", record(40, Policy::Pulltime)),
        ("measured streaming", measured),
        ("staged, 1 layer", record(1, Policy::Staged)),
        ("staged, 40 layers", record(40, Policy::Staged)),
        ("staged, short name", short),
        ("docker, 40 layers", record(40, Policy::Docker)),
    ];
    for (name, r) in records {
        out.push((format!("waterfall {name}"), waterfall_chart(&r, 0).unwrap()));
    }
    // A layer's seconds at a sub-second span (an axis in milliseconds).
    let mut fast = record(5, Policy::Pulltime);
    fast.runs[0].wall_s = 0.37;
    out.push(("waterfall in ms".into(), waterfall_chart(&fast, 0).unwrap()));

    // Sweeps, 1 Mbit/s to 10 Gbit/s, simulated: few and many bandwidths, few
    // and many series, long names.
    let few: Vec<f64> = [1e6, 1e7, 1e8, 1e9, 1e10].iter().map(|b| b / 8.0).collect();
    let many: Vec<f64> = (0..=40)
        .map(|k| 1e6 * 10f64.powf(k as f64 / 10.0) / 8.0)
        .collect();
    let series = |n: usize, rates: &[f64]| -> Vec<(String, Vec<(f64, f64)>)> {
        (0..n)
            .map(|i| {
                let img = image(2 + 3 * i);
                let name = if i == 0 {
                    LONG.to_string()
                } else {
                    format!("{LONG}-variant-{i} (largest layer split in {})", i + 1)
                };
                let pts = rates
                    .iter()
                    .map(|bps| {
                        let r =
                            simulate_at_bandwidth(&img, &scenario(Policy::Pulltime), *bps, vec![])
                                .unwrap();
                        (*bps, r.runs[0].wall_s)
                    })
                    .collect();
                (name, pts)
            })
            .collect()
    };
    out.push((
        "sweep, 2 images, 5 bandwidths".into(),
        bandwidth_sweep(
            &format!("{LONG}: pull time against bandwidth"),
            &series(2, &few),
        ),
    ));
    out.push((
        "sweep, 9 scenarios, 41 bandwidths".into(),
        bandwidth_sweep("simulated pull time against bandwidth", &series(9, &many)),
    ));
    out.push((
        "sweep, one point".into(),
        bandwidth_sweep("t", &[("as is".into(), vec![(1.25e7, 3.0)])]),
    ));
    out.push(("sweep, empty".into(), bandwidth_sweep("t", &[])));

    // Critical paths: all resources, long names, four bandwidths.
    let resources = [
        "resolve (token, manifest, config)",
        "network",
        "hashing",
        "inflate CPU",
        "extraction per byte",
        "inflate + write per byte",
        "extraction per entry",
        "per-layer overhead",
        "snapshot copy",
        "finish (image metadata)",
        "waiting between stages",
    ];
    let groups: Vec<Group> = ["10 Mbit/s", "100 Mbit/s", "1 Gbit/s", "10 Gbit/s"]
        .iter()
        .enumerate()
        .map(|(g, bw)| {
            let bars = (0..3)
                .map(|i| {
                    let path = resources
                        .iter()
                        .enumerate()
                        .map(|(k, r)| (*r, 0.01 + ((k + i + g) % 4) as f64 * 3.0))
                        .collect();
                    (format!("{LONG}-{i}"), path)
                })
                .collect();
            (bw.to_string(), bars)
        })
        .collect();
    out.push((
        "critical paths".into(),
        critical_paths_chart(
            &format!("{LONG}: why pull time falls less than size"),
            &groups,
        ),
    ));
    out
}

#[test]
fn no_text_overlaps_another_or_leaves_the_canvas() {
    for (name, chart) in charts() {
        let problems = chart.layout_problems();
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        assert_eq!(
            chart.svg.matches("<text").count(),
            chart.texts.len(),
            "{name}: every text has its box"
        );
        assert!(chart.texts.len() > 5, "{name}");
    }
}

#[test]
fn long_names_are_drawn_in_full() {
    for (name, chart) in charts() {
        if name.contains("empty") || name.contains("one point") || name.contains("short") {
            continue;
        }
        assert!(
            chart.texts.iter().any(|t| t.text.starts_with(LONG)),
            "{name}: {LONG} in {:?}",
            chart.texts.iter().map(|t| &t.text).collect::<Vec<_>>()
        );
        assert!(!chart.svg.contains('…'), "{name}: nothing shortened");
    }
}

fn options() -> usvg::Options<'static> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    for face in ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"] {
        if let Ok(data) = std::fs::read(Path::new(FONTS).join(face)) {
            db.load_font_data(data);
        }
    }
    db.set_sans_serif_family("DejaVu Sans");
    opt
}

fn texts(group: &usvg::Group, out: &mut Vec<usvg::Rect>) {
    for node in group.children() {
        match node {
            usvg::Node::Group(g) => texts(g, out),
            usvg::Node::Text(t) => out.push(t.abs_bounding_box()),
            _ => {}
        }
    }
}

/// Renders every chart; with `PULLTIME_CHARTS_OUT=DIR` set, also writes each
/// as `DIR/NAME.svg` and `DIR/NAME.png` to look at.
#[test]
fn every_chart_parses_and_renders_to_a_picture() {
    let opt = options();
    let out = std::env::var_os("PULLTIME_CHARTS_OUT").map(std::path::PathBuf::from);
    for (name, chart) in charts() {
        let tree = usvg::Tree::from_str(&chart.svg, &opt)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", chart.svg));
        let size = tree.size();
        assert_eq!(
            (size.width() as f64, size.height() as f64),
            (chart.width, chart.height),
            "{name}"
        );
        let mut pixmap =
            tiny_skia::Pixmap::new(chart.width as u32, chart.height as u32).expect("a size");
        resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
        if let Some(dir) = &out {
            let file = dir.join(name.replace([' ', ','], "-"));
            std::fs::write(file.with_extension("svg"), &chart.svg).unwrap();
            pixmap.save_png(file.with_extension("png")).unwrap();
        }
        let pixels = pixmap.pixels();
        let white = pixels
            .iter()
            .filter(|p| (p.red(), p.green(), p.blue(), p.alpha()) == (255, 255, 255, 255))
            .count();
        assert_eq!(
            pixels.iter().filter(|p| p.alpha() == 255).count(),
            pixels.len(),
            "{name}: the background covers the canvas"
        );
        assert!(
            white < pixels.len() * 99 / 100,
            "{name}: {} of {} pixels drawn",
            pixels.len() - white,
            pixels.len()
        );
    }
}

#[test]
fn with_a_real_font_every_text_lies_inside_its_estimated_box() {
    assert!(
        Path::new(FONTS).join("DejaVuSans.ttf").is_file()
            && Path::new(FONTS).join("DejaVuSans-Bold.ttf").is_file(),
        "needs DejaVu Sans in {FONTS} (Debian: apt-get install fonts-dejavu-core)"
    );
    let opt = options();
    for (name, chart) in charts() {
        let tree = usvg::Tree::from_str(&chart.svg, &opt).unwrap();
        let mut laid = Vec::new();
        texts(tree.root(), &mut laid);
        assert_eq!(laid.len(), chart.texts.len(), "{name}: every text laid out");
        for (real, est) in laid.iter().zip(&chart.texts) {
            let tol = 0.5;
            assert!(
                real.left() as f64 >= est.x - tol
                    && real.right() as f64 <= est.x + est.w + tol
                    && real.top() as f64 >= est.y - tol
                    && real.bottom() as f64 <= est.y + est.h + tol,
                "{name}: {:?} drawn at {real:?}, estimated {est:?}",
                est.text
            );
        }
    }
}
