//! `pulltime compare`.

use std::path::PathBuf;

use pulltime::oci::record::PullRecord;

use super::inputs::ImageInput;
use pulltime::profiles::network::format_bandwidth;
use pulltime::report::compare::{Entry, comparison_table};
use pulltime::report::{svg, svg_bounds, table::render};
use pulltime::sim::{simulate_at_bandwidth, simulate_record};

/// Bandwidths of the sweep, Mbit/s.
const SWEEP_MBIT: &[f64] = &[
    5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime compare vp-transcode-original vp-transcode-multistage
  pulltime compare fat.json slim.json --csv table.csv
  pulltime compare --puller pulltime,containerd 127.0.0.1:5000/app:v1";

/// Arguments of `pulltime compare`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("csv", |a| a.help("Write the simulated comparison table (with --puller: the measured one) as CSV to this file")))]
#[command(mut_arg("markdown", |a| a.help("Write the simulated comparison table (with --puller: the measured one) as Markdown to this file")))]
#[command(after_help = EXAMPLES)]
pub struct CompareArgs {
    /// Two or more images (the first is the baseline): registry references,
    /// `oci:DIR[:TAG]`, record `.json` files, or image profiles. With --puller:
    /// one registry reference, pulled by each puller.
    #[arg(num_args = 1.., required = true)]
    pub images: Vec<String>,
    /// Pullers measured side by side on one image (with --runs, --records, ...).
    #[command(flatten)]
    pub pullers: super::compare_pullers::PullerCompareArgs,
    /// Network, host, policy and image-profile settings of the simulation.
    #[command(flatten)]
    pub model: super::model::ModelArgs,
    /// The simulated comparison table, for machines.
    #[command(flatten)]
    pub export: super::export::TableExport,
    /// Platform to choose from a multi-platform registry image: os/arch[/variant]
    /// (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
    /// Draw pull time against bandwidth to this SVG file.
    #[arg(help_heading = "Output", long)]
    pub svg: Option<PathBuf>,
    /// Write the bandwidth sweep as CSV: one row per bandwidth and image, raw
    /// seconds and bytes, and each image's change against the first.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub sweep_csv: Option<PathBuf>,
    /// Write everything as JSON: each image's simulated (and measured) record,
    /// and the sweep.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub json: Option<PathBuf>,
    /// Draw why to this SVG file: each image's critical path by resource at 10
    /// Mbit/s, 100 Mbit/s, 1 Gbit/s and 10 Gbit/s.
    #[arg(help_heading = "Output", long)]
    pub why_svg: Option<PathBuf>,
}

/// Runs `pulltime compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    super::export::check_output(args.svg.as_deref(), "--svg")?;
    super::export::check_output(args.why_svg.as_deref(), "--why-svg")?;
    super::export::check_output(args.sweep_csv.as_deref(), "--sweep-csv")?;
    super::export::check_output(args.json.as_deref(), "--json")?;
    args.export.check()?;
    if !args.pullers.puller.is_empty() {
        if args.platform.is_some() {
            super::exit::usage!(
                "--platform does not apply with --puller: each puller pulls its own host's platform"
            );
        }
        let [image] = args.images.as_slice() else {
            super::exit::usage!(
                "compare --puller takes one image reference, pulled by each puller ({} given)",
                args.images.len()
            );
        };
        return super::compare_pullers::run(image, &args.pullers, &args.export);
    }
    if args.images.len() < 2 {
        super::exit::usage!("compare needs two or more images (or --puller LIST and one image)");
    }
    let scenario = args.model.scenario()?;
    let network = scenario.network.clone();
    let mut measured: Vec<(String, PullRecord)> = Vec::new();
    let mut simulated: Vec<(String, PullRecord)> = Vec::new();
    let mut images = Vec::new();
    for spec in &args.images {
        let image = args
            .model
            .image(spec, args.platform.as_deref(), &args.pullers.registry)?;
        if let ImageInput::Record(path) = ImageInput::classify(spec)? {
            let r = pulltime::report::json::read_record(&path)?;
            if !r.simulated {
                measured.push((spec.clone(), r));
            }
        }
        simulated.push((spec.clone(), simulate_record(&image, &scenario, vec![])?));
        images.push((spec.clone(), image));
    }
    let group = |rows: &[(String, PullRecord)]| -> String {
        let entries: Vec<Entry<'_>> = rows
            .iter()
            .map(|(label, record)| Entry {
                label: label.clone(),
                record,
            })
            .collect();
        comparison_table(&[entries])
    };
    for warning in unlike_conditions(&measured) {
        eprintln!("warning: {warning}");
    }
    if measured.len() == args.images.len() {
        outln!("measured:");
        out!("{}", group(&measured));
        outln!();
    }
    outln!(
        "simulated ({}, {} policy, host {}):",
        network.name,
        pulltime::sim::Policy::from(args.model.policy).as_str(),
        scenario.host.name
    );
    out!("{}", group(&simulated));
    {
        let entries: Vec<Entry<'_>> = simulated
            .iter()
            .map(|(label, record)| Entry {
                label: label.clone(),
                record,
            })
            .collect();
        let (headers, rows) =
            pulltime::report::compare::comparison_rows(std::slice::from_ref(&entries));
        let machine = pulltime::report::compare::comparison_machine(&[entries]);
        args.export.write_table(&headers, &rows, &machine)?;
    }
    for (name, image) in &images {
        for e in &image.estimated {
            outln!("{name}: estimated {e}");
        }
    }

    // Where does the difference in pull time stop following the difference in size?
    let mut series: Vec<(String, Vec<(f64, f64)>)> = images
        .iter()
        .map(|(n, _)| (n.clone(), Vec::new()))
        .collect();
    // Why, in words, at a few bandwidths: which resource bounds each pull and what
    // drives it.
    let mut why: Vec<String> = Vec::new();
    let mut why_bars: Vec<svg_bounds::Group> = Vec::new();
    for mbit in SWEEP_MBIT {
        let bps = mbit * 1e6 / 8.0;
        let mut records = Vec::new();
        for (i, (_, image)) in images.iter().enumerate() {
            let record = simulate_at_bandwidth(image, &scenario, bps, vec![])?;
            series[i].1.push((bps, record.runs[0].wall_s));
            records.push(record);
        }
        if pulltime::sim::explain::EXPLAIN_MBIT.contains(mbit) {
            let labels: Vec<String> = images.iter().map(|(n, _)| n.clone()).collect();
            let (lines, paths) = pulltime::sim::explain::explain_records(&labels, &records);
            why.push(format!("  at {}:", format_bandwidth(bps)));
            why.extend(lines.into_iter().map(|l| format!("    {l}")));
            why_bars.push((format_bandwidth(bps), paths));
        }
    }
    let base_size = images[0].1.layers.iter().map(|l| l.compressed).sum::<u64>() as f64;
    outln!();
    // Images are numbered in the table (their names can be long): #1 is the first.
    for (i, (n, _)) in images.iter().enumerate() {
        outln!("#{} = {n}", i + 1);
    }
    let mut headers = vec!["bandwidth".to_string()];
    headers.extend((1..=images.len()).map(|i| format!("#{i}")));
    headers.extend((2..=images.len()).map(|i| format!("#{i} vs #1: size / time")));
    let rows: Vec<Vec<String>> = SWEEP_MBIT
        .iter()
        .enumerate()
        .map(|(k, mbit)| {
            let mut row = vec![format_bandwidth(mbit * 1e6 / 8.0)];
            row.extend(series.iter().map(|(_, p)| format!("{:.2} s", p[k].1)));
            for (i, (_, image)) in images.iter().enumerate().skip(1) {
                let size = image.layers.iter().map(|l| l.compressed).sum::<u64>() as f64;
                let (t0, t) = (series[0].1[k].1, series[i].1[k].1);
                row.push(format!(
                    "{:+.0}% / {:+.0}%",
                    100.0 * (size - base_size) / base_size.max(1.0),
                    100.0 * (t - t0) / t0.max(1e-9)
                ));
            }
            row
        })
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    out!("{}", render(&header_refs, &rows, 1));
    out!(
        "{}",
        pulltime::report::table::paragraph(
            "",
            "",
            "compressed size difference vs pull time difference, simulated; where the two part, fixed costs (round trips) or CPU work (decompression, extraction) set the pace instead of bytes"
        )
    );
    if !why.is_empty() {
        outln!("\nwhy, against {}:", images[0].0);
        for line in &why {
            let indent = line.len() - line.trim_start().len();
            let (lead, text) = line.split_at(indent);
            out!(
                "{}",
                pulltime::report::table::paragraph(lead, &" ".repeat(indent + 2), text)
            );
        }
    }
    // The pictures name images by reference (a record's, not its file's name).
    let refs: Vec<(&str, &str)> = images
        .iter()
        .map(|(s, i)| (s.as_str(), i.name.as_str()))
        .collect();
    let names = svg::image_names(&refs);
    if let Some(p) = &args.svg {
        let named: Vec<svg::Series> = names
            .iter()
            .zip(&series)
            .map(|(n, s)| (n.clone(), s.1.clone()))
            .collect();
        let chart = svg::bandwidth_sweep(
            &format!(
                "simulated pull time against bandwidth ({} policy, host {})",
                pulltime::sim::Policy::from(args.model.policy).as_str(),
                scenario.host.name
            ),
            &named,
        );
        super::export::write_file(p, chart.svg)?;
        outln!("chart: {}", p.display());
    }
    if let Some(p) = &args.why_svg {
        let chart = svg_bounds::critical_paths(
            &format!(
                "why pull time falls less than size ({} policy, host {})",
                pulltime::sim::Policy::from(args.model.policy).as_str(),
                scenario.host.name
            ),
            &svg_bounds::renamed(&why_bars, &names),
        );
        super::export::write_file(p, chart)?;
        outln!("why chart: {}", p.display());
    }
    if let Some(p) = &args.sweep_csv {
        super::export::write_file(p, sweep_machine(&images, &series).to_csv())?;
        outln!("sweep: {}", p.display());
    }
    if let Some(p) = &args.json {
        let doc = serde_json::json!({
            "network": network.name,
            "policy": pulltime::sim::Policy::from(args.model.policy).as_str(),
            "host": scenario.host.name,
            "images": images.iter().zip(&simulated).map(|((spec, _), (_, sim))| {
                serde_json::json!({
                    "image": spec,
                    "simulated": sim,
                    "measured": measured.iter().find(|(l, _)| l == spec).map(|(_, r)| r),
                })
            }).collect::<Vec<_>>(),
            "sweep": SWEEP_MBIT.iter().enumerate().map(|(k, mbit)| {
                serde_json::json!({
                    "bandwidth_bit_per_s": mbit * 1e6,
                    "pull_s": series.iter().map(|(n, p)| (n.clone(), serde_json::json!(p[k].1))).collect::<serde_json::Map<_, _>>(),
                })
            }).collect::<Vec<_>>(),
        });
        pulltime::report::json::write_json(&doc, p)?;
    }
    Ok(())
}

/// What differs between the conditions records were measured in, so that a
/// difference in pull time is not read as the images' alone: the host (machine,
/// cores, filesystem), the registry, and a simulated record's network.
fn unlike_conditions(records: &[(String, PullRecord)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut differs = |what: &str, value: &dyn Fn(&PullRecord) -> String| {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (label, r) in records {
            let v = value(r);
            if !seen.iter().any(|(s, _)| *s == v) {
                seen.push((v, label));
            }
        }
        if seen.len() > 1 {
            out.push(format!(
                "the records were measured on different {what}: {}; their times differ for that too",
                seen.iter()
                    .map(|(v, l)| format!("{l}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    differs("hosts", &|r| {
        format!(
            "{} ({} CPUs, {})",
            r.host.machine.as_deref().unwrap_or("unknown machine"),
            r.host.cpus,
            r.host
                .dest_filesystem
                .as_deref()
                .unwrap_or("unknown filesystem")
        )
    });
    differs("registries", &|r| {
        r.image
            .reference
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    });
    out
}

/// The sweep for programs: one row per bandwidth and image.
fn sweep_machine(
    images: &[(String, pulltime::sim::SimImage)],
    series: &[(String, Vec<(f64, f64)>)],
) -> pulltime::report::table::MachineTable {
    use pulltime::report::table::{MachineTable, raw_pct, raw_s};
    let mut t = MachineTable::new(&[
        "bandwidth_bit_per_s",
        "image",
        "compressed_bytes",
        "pull_s",
        "compressed_change_pct",
        "pull_change_pct",
    ]);
    let size = |i: usize| images[i].1.layers.iter().map(|l| l.compressed).sum::<u64>();
    for (k, mbit) in SWEEP_MBIT.iter().enumerate() {
        let t0 = series[0].1[k].1;
        for (i, (name, points)) in series.iter().enumerate() {
            let change =
                |new: f64, old: f64| (i > 0 && old > 0.0).then(|| 100.0 * (new - old) / old);
            t.rows.push(vec![
                format!("{:.0}", mbit * 1e6),
                name.clone(),
                size(i).to_string(),
                raw_s(Some(points[k].1)),
                raw_pct(change(size(i) as f64, size(0) as f64)),
                raw_pct(change(points[k].1, t0)),
            ]);
        }
    }
    t
}
