//! `pulltime simulate`.

use super::registry_args::RegistryArgs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::choices::PolicyArg;
use pulltime::oci::media_type::Compression;
use pulltime::oci::platform::Platform;
use pulltime::oci::record::PullRecord;
use pulltime::oci::reference::Reference;
use pulltime::profiles::host::HostProfile;
use pulltime::profiles::network::{NetworkProfile, TlsVersion, format_bandwidth, parse_bandwidth};
use pulltime::registry::ClientOptions;
use pulltime::report::{human_bytes, table::render};
use pulltime::sim::{
    Policy, Scenario, SimImage, bounding_phase, input, simulate_at_bandwidth, simulate_record,
    whatif,
};
use pulltime::synth::ImageProfile;

use super::synth::CompressionArg;

/// What the model runs on: shared by `simulate` and `compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Network profile (name or TOML file).
    #[arg(long, default_value = "dockerhub-100m")]
    pub network: String,
    /// Host profile from `pulltime calibrate` (default: the 2-core ext4 machine
    /// pulltime is developed on, profiles/hosts/xeon-2core-ext4.toml).
    #[arg(long)]
    pub host: Option<PathBuf>,
    /// How the puller schedules its stages.
    #[arg(long, value_enum, default_value_t = PolicyArg::Pulltime)]
    pub policy: PolicyArg,
    /// Downloads in flight at once (default: the policy's puller's own: 3 for
    /// docker, containerd and pulltime, 6 for podman and skopeo).
    #[arg(long)]
    pub max_concurrent_downloads: Option<usize>,
    /// Docker Hub's flow (token, blobs via a CDN): `auto` uses it when the network
    /// profile has a [cdn] section.
    #[arg(long, value_enum, default_value_t = Flow::Auto)]
    pub flow: Flow,
    /// The registry runs on this host (`pulltime serve`, as when checking the model
    /// against the lab): its serving CPU shares the pull's cores. Implied by an
    /// unshaped network (loopback)
    #[arg(long)]
    pub registry_on_host: bool,
    /// Scale for image profiles.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Compression for image profiles.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// TLS on every new connection, overriding the network profile's `tls`:
    /// 1.3 adds one round trip, 1.2 two, none zero.
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,
}

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    /// TLS 1.2 (two round trips).
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 (one round trip).
    #[value(name = "1.3")]
    Tls13,
    /// Plain HTTP.
    None,
}

impl ModelArgs {
    /// Loads the network and host profiles into a scenario.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            bail!("--scale must be positive");
        }
        let mut network = NetworkProfile::load(&self.network)?;
        if let Some(tls) = self.tls {
            network = network.with_tls(match tls {
                TlsArg::Tls12 => Some(TlsVersion::Tls12),
                TlsArg::Tls13 => Some(TlsVersion::Tls13),
                TlsArg::None => None,
            });
        }
        let host = load_host(self.host.as_deref())?;
        let dockerhub_flow = match self.flow {
            Flow::Auto => network.cdn.is_some(),
            Flow::Dockerhub => true,
            Flow::Plain => false,
        };
        Ok(Scenario {
            network,
            host,
            policy: self.policy.into(),
            max_concurrent_downloads: self
                .max_concurrent_downloads
                .unwrap_or_else(|| Policy::from(self.policy).default_downloads())
                .max(1),
            dockerhub_flow,
            index: false,
            registry_on_host: self.registry_on_host,
        })
    }

    /// Loads an image the way `simulate` accepts it.
    pub fn image(
        &self,
        spec: &str,
        platform: Option<&str>,
        registry: &RegistryArgs,
    ) -> anyhow::Result<SimImage> {
        load_image(
            spec,
            self.scale,
            self.compression.into(),
            platform,
            registry,
        )
    }
}

/// Arguments of `pulltime simulate`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("csv", |a| a.help("Write the scenario table as CSV to this file")))]
#[command(mut_arg("markdown", |a| a.help("Write the scenario table as Markdown to this file")))]
pub struct SimulateArgs {
    /// The image: a registry reference, `oci:DIR[:TAG]`, a record `.json`, or an
    /// image profile (built-in name or `.toml`).
    pub image: String,
    /// Network, host, policy and image-profile settings.
    #[command(flatten)]
    pub model: ModelArgs,
    /// What if every layer were recompressed with this?
    #[arg(long, value_enum)]
    pub recompress: Option<CompressionArg>,
    /// What if the node already held the first N layers (a number) or these
    /// layers (digest prefixes, comma-separated)?
    #[arg(long, value_delimiter = ',')]
    pub cached_layers: Vec<String>,
    /// What if all layers were merged into one?
    #[arg(long)]
    pub merge_layers: bool,
    /// What if the largest layer were split into N?
    #[arg(long)]
    pub split_layers: Option<usize>,
    /// What if the host's CPU were this many times as fast (0.5: half as fast)?
    /// Hashing, decompression, extraction and the pull's own overheads scale.
    #[arg(long)]
    pub cpu_speed: Option<f64>,
    /// Sweep the bandwidth: `10Mbit,100Mbit,1Gbit`.
    #[arg(long, value_delimiter = ',')]
    pub bandwidth: Vec<String>,
    /// Write the simulated record (the base scenario) here (`-` for stdout); with
    /// --fleet, the burst: its inputs and every node's completion and pull times.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Simulate N nodes cold-starting the image at once (a fleet burst).
    #[arg(long)]
    pub fleet: Option<usize>,
    /// Registry/CDN egress shared by the fleet, e.g. `10Gbit`.
    #[arg(long, default_value = "10Gbit")]
    pub egress: String,
    /// Spread the fleet's start times uniformly over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub fleet_spread: f64,
    /// Share of fleet nodes (0..1) that already hold the first --cached-layers N layers.
    #[arg(long, default_value_t = 0.0)]
    pub fleet_cached_fraction: f64,
    /// The scenario table, for machines.
    #[command(flatten)]
    pub export: super::export::TableExport,
    /// Draw the --bandwidth sweep as a line chart to this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Platform, for registry references.
    #[arg(long)]
    pub platform: Option<String>,
    /// How to reach the registry: scheme, CAs, certs.d, insecure registries.
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
}

/// Docker Hub flow selection.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Flow {
    /// When the network profile has a CDN.
    Auto,
    /// Token and redirects.
    Dockerhub,
    /// A plain registry.
    Plain,
}

/// Loads the image to simulate from any of the accepted forms.
pub fn load_image(
    spec: &str,
    scale: f64,
    compression: Compression,
    platform: Option<&str>,
    registry: &RegistryArgs,
) -> anyhow::Result<SimImage> {
    if let Some(rest) = spec.strip_prefix("oci:") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((d, t)) if Path::new(d).is_dir() => (d, t),
            _ => (rest, "latest"),
        };
        return Ok(input::from_layout(Path::new(dir), tag)?);
    }
    if spec.ends_with(".json") && Path::new(spec).is_file() {
        let r = pulltime::report::json::read_record(Path::new(spec))?;
        return Ok(input::from_record(spec, &r)?);
    }
    if spec.ends_with(".toml") || pulltime::profiles::image::builtin_names().contains(&spec) {
        let p = ImageProfile::load(spec)?;
        return Ok(input::from_profile(&p, scale, compression));
    }
    let reference = Reference::parse(spec)
        .context("not a layout (oci:DIR), record (.json) or image profile either")?;
    let platform = match platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let mut options = ClientOptions {
        credentials: None,
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    registry.apply(&reference, &mut options)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(input::from_registry(&reference, &options, &platform))?)
}

/// Loads a host profile (or the built-in default).
pub fn load_host(path: Option<&Path>) -> anyhow::Result<HostProfile> {
    Ok(match path {
        Some(p) => HostProfile::load(p)?,
        None => HostProfile::builtin(),
    })
}

/// Runs `pulltime simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
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
            format!("{} layers cached", digests.len())
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
            bail!("--cpu-speed must be a positive factor, e.g. 2 for twice as fast");
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
    for b in &args.bandwidth {
        let bps = parse_bandwidth(b)
            .map_err(anyhow::Error::msg)?
            .context("--bandwidth needs a rate, not unlimited")?;
        let label = format!("at {}", format_bandwidth(bps));
        let record = simulate_at_bandwidth(&image, &scenario, bps, vec![label.clone()])?;
        sweep.push((bps, record.runs[0].wall_s));
        rows.push((label, record));
    }
    if let Some(p) = &args.svg {
        if sweep.is_empty() {
            bail!("--svg draws the --bandwidth sweep: give --bandwidth too");
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
    if let Some(path) = &args.json {
        pulltime::report::json::write_record(&base, path)?;
        if path.as_os_str() == "-" {
            return Ok(());
        }
    }
    println!(
        "simulated {}: {} layers, {} compressed, {} uncompressed; network {}{}, policy {}, host {}",
        image.name,
        image.layers.len(),
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
    );
    for e in &image.estimated {
        println!("estimated: {e}");
    }
    let (headers, body) = scenario_rows(&rows);
    print!("{}", render(&headers, &body, 1));
    print_bounds(&rows);
    args.export.write_table(&headers, &body)
}

/// Why: what bounded each scenario's pull, and, as is, each layer.
fn print_bounds(rows: &[(String, PullRecord)]) {
    println!("\nwhy:");
    for (i, (label, record)) in rows.iter().enumerate() {
        let Some(b) = pulltime::sim::bounds::bounds(record) else {
            continue;
        };
        println!("  {label}: {}", b.summary());
        if i == 0 {
            for line in b.layer_lines() {
                println!("    {line}");
            }
        }
    }
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
                    |b| b.bound().0.to_string(),
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
        bail!("--fleet needs at least one node");
    }
    let valid = (0.0..=1.0).contains(&args.fleet_cached_fraction)
        && args.fleet_spread >= 0.0
        && args.fleet_spread.is_finite();
    if !valid {
        bail!("--fleet-cached-fraction must be within 0..1 and --fleet-spread non-negative");
    }
    let egress = parse_bandwidth(&args.egress)
        .map_err(anyhow::Error::msg)?
        .context("--egress needs a rate")?;
    let cached_layers = match args.cached_layers.as_slice() {
        [] => 0,
        [n] => n
            .parse()
            .context("with --fleet, --cached-layers takes a number of layers")?,
        _ => bail!("with --fleet, --cached-layers takes a number of layers"),
    };
    let o = FleetOptions {
        nodes,
        egress_bps: egress,
        spread_s: args.fleet_spread,
        cached_fraction: args.fleet_cached_fraction,
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
    println!(
        "fleet burst: {nodes} nodes pulling {} ({} each) over {} per node, {} registry egress, starts spread over {} s, {:.0}% of nodes holding the first {cached_layers} layers",
        image.name,
        human_bytes(image.layers.iter().map(|l| l.compressed).sum()),
        scenario.network.name,
        format_bandwidth(egress),
        args.fleet_spread,
        100.0 * args.fleet_cached_fraction
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
    print!(
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
    println!(
        "one node alone: {:.2} s; {} served, last byte at {:.2} s",
        r.single_node_s,
        human_bytes(r.bytes),
        r.egress_end_s
    );
    Ok(())
}
