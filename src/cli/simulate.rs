//! `pulltime simulate`.

use std::path::PathBuf;

use anyhow::Context;

use pulltime::oci::media_type::Compression;
use pulltime::oci::record::PullRecord;
use pulltime::profiles::network::{format_bandwidth, parse_bandwidth};
use pulltime::report::table::{MachineTable, paragraph, raw_pct, raw_s};
use pulltime::report::{human_bytes, table::render};
use pulltime::sim::{
    Policy, Scenario, SimImage, bounding_phase, simulate_at_bandwidth, simulate_record, whatif,
};

use super::exit::usage;
use super::inputs::ImageInput;
use super::model::ModelArgs;
use super::synth::CompressionArg;

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime simulate vp-transcode-original --network home-50m
  pulltime simulate run.json --bandwidth 10Mbit,100Mbit,1Gbit --svg sweep.svg
  pulltime simulate oci:./layout:v1 --recompress zstd --merge-layers
  pulltime simulate python:3.9-slim --fleet 200 --json burst.json";

/// Arguments of `pulltime simulate`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("csv", |a| a.help("Write the scenario table as CSV to this file")))]
#[command(mut_arg("markdown", |a| a.help("Write the scenario table as Markdown to this file")))]
#[command(after_help = EXAMPLES)]
pub struct SimulateArgs {
    /// The image: a registry reference, `oci:DIR[:TAG]`, a record `.json`, or an
    /// image profile (built-in name or `.toml`).
    pub image: String,
    /// Network, host, policy and image-profile settings.
    #[command(flatten)]
    pub model: ModelArgs,
    /// What if every layer were recompressed with this?
    #[arg(help_heading = "What if", long, value_enum)]
    pub recompress: Option<CompressionArg>,
    /// What if the node already held the first N layers (a number) or these
    /// layers (digest prefixes, comma-separated)?
    #[arg(help_heading = "What if", long, value_delimiter = ',')]
    pub cached_layers: Vec<String>,
    /// What if all layers were merged into one?
    #[arg(help_heading = "What if", long)]
    pub merge_layers: bool,
    /// What if the largest layer were split into N?
    #[arg(help_heading = "What if", long)]
    pub split_layers: Option<usize>,
    /// What if the host's CPU were this many times as fast (0.5: half as fast)?
    /// Hashing, decompression, extraction and the pull's own overheads scale.
    #[arg(help_heading = "What if", long)]
    pub cpu_speed: Option<f64>,
    /// Sweep the bandwidth: `10Mbit,100Mbit,1Gbit`.
    #[arg(help_heading = "What if", long, value_delimiter = ',')]
    pub bandwidth: Vec<String>,
    /// Write the simulated record (the base scenario) here (`-` for stdout); with
    /// --fleet, the burst: its inputs and every node's completion and pull times.
    #[arg(help_heading = "Output", long)]
    pub json: Option<PathBuf>,
    /// Simulate N nodes cold-starting the image at once (a fleet burst).
    #[arg(help_heading = "Fleet", long)]
    pub fleet: Option<usize>,
    /// Registry/CDN egress shared by the fleet, e.g. `10Gbit` (the default).
    #[arg(help_heading = "Fleet", long)]
    pub egress: Option<String>,
    /// Spread the fleet's start times uniformly over this many seconds (default 0).
    #[arg(help_heading = "Fleet", long)]
    pub fleet_spread: Option<f64>,
    /// Share of fleet nodes (0..1) that already hold the first --cached-layers N
    /// layers (default 0).
    #[arg(help_heading = "Fleet", long)]
    pub fleet_cached_fraction: Option<f64>,
    /// The scenario table, for machines.
    #[command(flatten)]
    pub export: super::export::TableExport,
    /// Draw the --bandwidth sweep as a line chart to this SVG file.
    #[arg(help_heading = "Output", long)]
    pub svg: Option<PathBuf>,
    /// Platform, for registry references.
    #[arg(long)]
    pub platform: Option<String>,
    /// How to reach the registry: scheme, CAs, certs.d, insecure registries.
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
}

/// Runs `pulltime simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    check_flags(&args)?;
    let scenario = args.model.scenario()?;
    let image = args
        .model
        .image(&args.image, args.platform.as_deref(), &args.registry)?;
    let network = scenario.network.clone();
    let dockerhub_flow = scenario.dockerhub_flow;
    let base = simulate_record(&image, &scenario, vec![])?;
    let mut rows: Vec<(String, PullRecord)> = vec![("as is".into(), base.clone())];
    if let Some(c) = args.recompress {
        let c: Compression = c.into();
        let label = format!("recompressed to {c:?}").to_lowercase();
        rows.push((
            label.clone(),
            simulate_record(&whatif::recompress(&image, c), &scenario, vec![label])?,
        ));
    }
    if !args.cached_layers.is_empty() {
        let (first, digests): (usize, Vec<String>) = match args.cached_layers.as_slice() {
            [n] if n.parse::<usize>().is_ok() => (n.parse().expect("checked"), vec![]),
            ds => (0, ds.to_vec()),
        };
        let label = if digests.is_empty() {
            format!("first {first} layers cached")
        } else {
            format!(
                "{} cached",
                pulltime::report::plural(digests.len() as u64, "layer")
            )
        };
        rows.push((
            label.clone(),
            simulate_record(
                &whatif::cache(&image, first, &digests),
                &scenario,
                vec![label],
            )?,
        ));
    }
    if args.merge_layers {
        rows.push((
            "layers merged".into(),
            simulate_record(
                &whatif::merge(&image),
                &scenario,
                vec!["layers merged".into()],
            )?,
        ));
    }
    if let Some(n) = args.split_layers {
        let label = format!("largest layer split in {n}");
        rows.push((
            label.clone(),
            simulate_record(&whatif::split(&image, n), &scenario, vec![label])?,
        ));
    }
    if let Some(f) = args.cpu_speed {
        if !(f > 0.0 && f.is_finite()) {
            super::exit::usage!("--cpu-speed must be a positive factor, e.g. 2 for twice as fast");
        }
        let label = format!("CPU {f}x as fast");
        let faster = Scenario {
            host: scenario.host.with_cpu_speed(f),
            ..scenario.clone()
        };
        rows.push((
            label.clone(),
            simulate_record(&image, &faster, vec![label])?,
        ));
    }
    if let Some(nodes) = args.fleet {
        return run_fleet(&args, &image, &scenario, nodes);
    }
    let mut sweep = Vec::new();
    let mut sweep_rows: Vec<(String, f64)> = Vec::new();
    for b in &args.bandwidth {
        let bps = parse_bandwidth(b)
            .map_err(anyhow::Error::msg)?
            .context("--bandwidth needs a rate, not unlimited")?;
        let label = format!("at {}", format_bandwidth(bps));
        let record = simulate_at_bandwidth(&image, &scenario, bps, vec![label.clone()])?;
        sweep.push((bps, record.runs[0].wall_s));
        sweep_rows.push((label.clone(), bps));
        rows.push((label, record));
    }
    if let Some(p) = &args.svg {
        if sweep.is_empty() {
            super::exit::usage!("--svg draws the --bandwidth sweep: give --bandwidth too");
        }
        sweep.sort_by(|a, b| a.0.total_cmp(&b.0));
        let title = format!(
            "{}: simulated pull time against bandwidth ({} policy)",
            image.name,
            Policy::from(args.model.policy).as_str()
        );
        // A line per scenario (as is, then each what-if), at the swept bandwidths.
        let scenarios = &rows[..rows.len() - sweep.len()];
        let mut series = Vec::new();
        for (label, record) in scenarios {
            let mut points = Vec::new();
            for (bps, _) in &sweep {
                let r = pulltime::sim::resimulate_at_bandwidth(record, &scenario, *bps)
                    .context("a scenario's record keeps its simulation inputs")??;
                points.push((*bps, r.runs[0].wall_s));
            }
            series.push((label.clone(), points));
        }
        let chart = pulltime::report::svg::bandwidth_sweep(&title, &series);
        super::export::write_file(p, chart.svg)?;
    }
    let (headers, body) = scenario_rows(&rows);
    args.export
        .write_table(&headers, &body, &scenario_machine(&rows, &sweep_rows))?;
    if let Some(path) = &args.json {
        pulltime::report::json::write_record(&base, path)?;
        if path.as_os_str() == "-" {
            return Ok(());
        }
    }
    out!(
        "{}",
        paragraph(
            "",
            "  ",
            &format!(
                "simulated {}: {}, {} compressed, {} uncompressed; network {}{}, policy {}, host {}",
                image.name,
                pulltime::report::plural(image.layers.len() as u64, "layer"),
                human_bytes(image.layers.iter().map(|l| l.compressed).sum()),
                human_bytes(image.layers.iter().map(|l| l.uncompressed).sum()),
                network.name,
                if dockerhub_flow {
                    " (Docker Hub flow)"
                } else {
                    ""
                },
                Policy::from(args.model.policy).as_str(),
                scenario.host.name
            )
        )
    );
    for e in &image.estimated {
        outln!("estimated: {e}");
    }
    out!("{}", render(&headers, &body, 1));
    print_bounds(&rows);
    Ok(())
}

/// [`scenario_rows`] for programs: raw seconds, the bandwidth of the sweep's
/// rows in bits per second (empty for the others), and the change against the
/// first row in percent.
fn scenario_machine(rows: &[(String, PullRecord)], sweep: &[(String, f64)]) -> MachineTable {
    let mut t = MachineTable::new(&[
        "scenario",
        "bandwidth_bit_per_s",
        "pull_s",
        "resolve_s",
        "download_s",
        "decompress_s",
        "extract_s",
        "bound_by",
        "change_vs_as_is_pct",
    ]);
    let base = rows.first().map_or(0.0, |(_, r)| r.runs[0].wall_s);
    for (label, r) in rows {
        let run = &r.runs[0];
        let bps = sweep.iter().find(|(l, _)| l == label).map(|(_, b)| b * 8.0);
        t.rows.push(vec![
            label.clone(),
            bps.map_or_else(String::new, |b| format!("{b:.0}")),
            raw_s(Some(run.wall_s)),
            raw_s(Some(run.resolve_s)),
            raw_s(run.layer_sum(|l| l.download_s)),
            raw_s(run.layer_sum(|l| l.decompress_s)),
            raw_s(run.layer_sum(|l| l.extract_s)),
            pulltime::sim::bounds::bounds(r).map_or_else(
                || bounding_phase(r).to_string(),
                |b| b.bound().0.to_string(),
            ),
            raw_pct((base > 0.0).then(|| 100.0 * (run.wall_s - base) / base)),
        ]);
    }
    t
}

/// Why: what bounded each scenario's pull, and, as is, each layer.
fn print_bounds(rows: &[(String, PullRecord)]) {
    outln!("\nwhy:");
    for (i, (label, record)) in rows.iter().enumerate() {
        let Some(b) = pulltime::sim::bounds::bounds(record) else {
            continue;
        };
        out!(
            "{}",
            paragraph(&format!("  {label}: "), "      ", &b.summary())
        );
        if i == 0 {
            for line in b.layer_lines() {
                out!("{}", paragraph("    ", "        ", &line));
            }
        }
    }
}

/// Refuses flags that would be ignored for this input, naming why.
fn check_flags(args: &SimulateArgs) -> anyhow::Result<()> {
    super::export::check_stdout_output(args.json.as_deref(), "--json")?;
    super::export::check_output(args.svg.as_deref(), "--svg")?;
    args.export.check()?;
    let input = ImageInput::classify(&args.image)?;
    let what = match &input {
        ImageInput::Registry(_) => "a registry reference",
        ImageInput::Layout { .. } => "an OCI layout",
        ImageInput::Record(_) => "a record",
        ImageInput::Profile(_) => "an image profile",
    };
    let m = &args.model;
    if !input.is_profile() {
        for (flag, given) in [
            ("--scale", m.scale.is_some()),
            ("--compression", m.compression.is_some()),
        ] {
            if given {
                usage!(
                    "{flag} applies to image profiles only, and {} is {what} (for another compression, try --recompress)",
                    args.image
                );
            }
        }
    }
    if args.platform.is_some() && !matches!(input, ImageInput::Registry(_)) {
        usage!(
            "--platform chooses from a registry's multi-platform index; {} is {what}",
            args.image
        );
    }
    if args.fleet.is_none() {
        for (flag, given) in [
            ("--egress", args.egress.is_some()),
            ("--fleet-spread", args.fleet_spread.is_some()),
            (
                "--fleet-cached-fraction",
                args.fleet_cached_fraction.is_some(),
            ),
        ] {
            if given {
                usage!("{flag} applies to a fleet burst only: add --fleet N");
            }
        }
    } else {
        for (flag, given) in [
            ("--recompress", args.recompress.is_some()),
            ("--merge-layers", args.merge_layers),
            ("--split-layers", args.split_layers.is_some()),
            ("--cpu-speed", args.cpu_speed.is_some()),
            ("--bandwidth", !args.bandwidth.is_empty()),
            ("--svg", args.svg.is_some()),
            ("--csv", args.export.csv.is_some()),
            ("--markdown", args.export.markdown.is_some()),
        ] {
            if given {
                usage!(
                    "{flag} does not apply with --fleet: a burst simulates the image as it is (with --cached-layers N and --fleet-cached-fraction for warm nodes); run the what-if without --fleet"
                );
            }
        }
    }
    Ok(())
}

/// A bound's name without its explanation (`resolve (token, ...)` ->
/// `resolve`): the why lines below the table spell it out.
fn short_bound(name: &str) -> String {
    name.split(" (").next().unwrap_or(name).to_string()
}

/// One row per scenario: times, the bounding phase, and the saving against the first row.
pub fn scenario_rows(rows: &[(String, PullRecord)]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let base_wall = rows.first().map_or(0.0, |(_, r)| r.runs[0].wall_s);
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, r)| {
            let run = &r.runs[0];
            let saving = if base_wall > 0.0 {
                format!("{:+.0}%", 100.0 * (run.wall_s - base_wall) / base_wall)
            } else {
                "-".into()
            };
            vec![
                label.clone(),
                format!("{:.3} s", run.wall_s),
                format!("{:.3} s", run.resolve_s),
                format!("{:.3} s", run.layer_sum(|l| l.download_s).unwrap_or(0.0)),
                format!("{:.3} s", run.layer_sum(|l| l.decompress_s).unwrap_or(0.0)),
                format!("{:.3} s", run.layer_sum(|l| l.extract_s).unwrap_or(0.0)),
                // The critical path's largest part, as the why lines say.
                pulltime::sim::bounds::bounds(r).map_or_else(
                    || bounding_phase(r).to_string(),
                    |b| short_bound(b.bound().0),
                ),
                saving,
            ]
        })
        .collect();
    let headers = vec![
        "scenario",
        "pull",
        "resolve",
        "download",
        "decompress",
        "extract",
        "bound by",
        "vs as is",
    ];
    (headers, body)
}

fn run_fleet(
    args: &SimulateArgs,
    image: &SimImage,
    scenario: &Scenario,
    nodes: usize,
) -> anyhow::Result<()> {
    use pulltime::sim::fleet::{FleetOptions, quantile, simulate_fleet};
    if nodes == 0 {
        super::exit::usage!("--fleet needs at least one node");
    }
    let spread = args.fleet_spread.unwrap_or(0.0);
    let cached_fraction = args.fleet_cached_fraction.unwrap_or(0.0);
    let valid = (0.0..=1.0).contains(&cached_fraction) && spread >= 0.0 && spread.is_finite();
    if !valid {
        super::exit::usage!(
            "--fleet-cached-fraction must be within 0..1 and --fleet-spread non-negative"
        );
    }
    let egress = parse_bandwidth(args.egress.as_deref().unwrap_or("10Gbit"))
        .map_err(anyhow::Error::msg)?
        .context("--egress needs a rate")?;
    let cached_layers = match args.cached_layers.as_slice() {
        [] => 0,
        [n] => n
            .parse()
            .context("with --fleet, --cached-layers takes a number of layers")?,
        _ => super::exit::usage!("with --fleet, --cached-layers takes a number of layers"),
    };
    let o = FleetOptions {
        nodes,
        egress_bps: egress,
        spread_s: spread,
        cached_fraction,
        cached_layers,
        seed: 1,
    };
    let r = simulate_fleet(image, scenario, &o)?;
    if let Some(path) = &args.json {
        // The burst, its inputs and every node's times.
        let doc = serde_json::json!({
            "image": image.name,
            "network": scenario.network.name,
            "policy": scenario.policy.as_str(),
            "host": scenario.host.name,
            "burst": o,
            "result": r,
        });
        pulltime::report::json::write_json(&doc, path)?;
        if path.as_os_str() == "-" {
            return Ok(());
        }
    }
    outln!(
        "fleet burst: {nodes} nodes pulling {} ({} each) over {} per node, {} registry egress, starts spread over {} s, {:.0}% of nodes holding the first {cached_layers} layers",
        image.name,
        human_bytes(image.layers.iter().map(|l| l.compressed).sum()),
        scenario.network.name,
        format_bandwidth(egress),
        spread,
        100.0 * cached_fraction
    );
    let row = |label: &str, v: &[f64]| {
        vec![
            label.to_string(),
            format!("{:.2} s", quantile(v, 0.5)),
            format!("{:.2} s", quantile(v, 0.95)),
            format!("{:.2} s", quantile(v, 0.99)),
            format!("{:.2} s", v.last().copied().unwrap_or(0.0)),
        ]
    };
    out!(
        "{}",
        render(
            &["", "p50", "p95", "p99", "max"],
            &[
                row("completed (from burst start)", &r.completions),
                row("pull time (from node start)", &r.durations)
            ],
            1
        )
    );
    outln!(
        "one node alone: {:.2} s; {} served, last byte at {:.2} s",
        r.single_node_s,
        human_bytes(r.bytes),
        r.egress_end_s
    );
    Ok(())
}
