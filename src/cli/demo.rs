//! `pulltime demo`.

use std::io::IsTerminal;
use std::path::PathBuf;

use pulltime::lab::demo::{DemoOptions, PAIRS, explain, run, table};
use pulltime::profiles::network::NetworkProfile;
use pulltime::report::svg_bounds;

use super::synth::CompressionArg;

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime demo
  pulltime demo --pairs sn-text-filter --runs 5 --out ./demo
  pulltime demo --network home-50m --compression zstd";

/// Arguments of `pulltime demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DemoArgs {
    /// Scale of the study's images (1.0 = full size: ~15 GB of pulls per run).
    #[arg(long, default_value_t = 0.02)]
    pub scale: f64,
    /// Cold pulls per image.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Directory for the layouts and JSON records (default: a new directory in the temp dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Network profile between the puller and the emulated Docker Hub.
    #[arg(long, default_value = "dockerhub-100m")]
    pub network: String,
    /// Layer compression of the synthesised images.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Which functions (comma-separated); default all of the study's pairs.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(PAIRS))]
    pub pairs: Vec<String>,
    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `pulltime demo`.
pub fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let out = match args.out {
        Some(o) => o,
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            std::env::temp_dir().join(format!("pulltime-demo-{stamp}"))
        }
    };
    let pairs = if args.pairs.is_empty() {
        PAIRS.iter().map(|s| s.to_string()).collect()
    } else {
        args.pairs
    };
    let options = DemoOptions {
        scale: args.scale,
        runs: args.runs as usize,
        out: out.clone(),
        network: NetworkProfile::load(&args.network)?,
        compression: args.compression.into(),
        pairs,
        progress: if !args.quiet && std::io::stderr().is_terminal() {
            super::progress::bars()
        } else {
            pulltime::pipeline::progress::Progress::none()
        },
    };
    outln!(
        "pulltime demo: the study's original vs multi-stage images at scale {}, {} cold pulls each, over {}",
        options.scale,
        options.runs,
        options.network.name
    );
    let results = run(&options, &mut |line| outln!("  {line}"))?;
    outln!();
    out!("{}", table(&results));
    outln!(
        "\nwhy pull time falls less than size (simulated from these records with pulltime's policy on host {}):",
        pulltime::profiles::host::HostProfile::builtin().name
    );
    for e in explain(&results, &options.network)? {
        let svg = out.join(format!("why-{}.svg", e.pair));
        for (bandwidth, line) in &e.lines {
            outln!("  {} at {bandwidth}: {line}", e.pair);
        }
        let title = format!("{}: why pull time falls less than size", e.pair);
        super::export::write_file(&svg, svg_bounds::critical_paths(&title, &e.groups))?;
        outln!("  picture: {}", svg.display());
    }
    outln!("JSON records: {}", out.join("records").display());
    Ok(())
}
