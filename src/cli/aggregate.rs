//! `pulltime aggregate`.

use std::io::Write as _;

use std::path::PathBuf;

use pulltime::report::aggregate::aggregate;
use pulltime::report::json::read_record;
use pulltime::report::table::render;

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime aggregate node-*.json
  pulltime aggregate node-*.json --json fleet.json";

/// Arguments of `pulltime aggregate`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct AggregateArgs {
    /// Records from many machines (e.g. one `pulltime pull --json` per node).
    #[arg(num_args = 1.., required = true)]
    pub records: Vec<PathBuf>,
    /// Write the merged summary as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `pulltime aggregate`.
pub fn run(args: AggregateArgs) -> anyhow::Result<()> {
    super::export::check_stdout_output(args.json.as_deref(), "--json")?;
    let records = args
        .records
        .iter()
        .map(|p| read_record(p))
        .collect::<Result<Vec<_>, _>>()?;
    let agg = aggregate(&records);
    if agg.phases.first().is_none_or(|p| p.n == 0) {
        super::exit::usage!("the records hold no runs");
    }
    // With the JSON on stdout, the table goes to stderr.
    let mut out: Box<dyn std::io::Write> =
        if args.json.as_deref().is_some_and(|p| p.as_os_str() == "-") {
            Box::new(std::io::stderr())
        } else {
            Box::new(pulltime::report::stdout::Stdout)
        };
    writeln!(
        out,
        "{}, {}",
        pulltime::report::plural(agg.records as u64, "record"),
        pulltime::report::plural(agg.phases[0].n as u64, "run")
    )?;
    if agg.images.len() > 1 {
        eprintln!(
            "warning: the records are of {} different images; their times are merged anyway",
            agg.images.len()
        );
    }
    let rows: Vec<Vec<String>> = agg
        .phases
        .iter()
        .map(|p| {
            vec![
                p.phase.clone(),
                format!("{:.3} s", p.min),
                format!("{:.3} s", p.p50),
                format!("{:.3} s", p.p95),
                format!("{:.3} s", p.p99),
                format!("{:.3} s", p.max),
                format!("{:.3} s", p.mean),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        render(
            &["phase", "min", "p50", "p95", "p99", "max", "mean"],
            &rows,
            1
        )
    )?;
    if let Some(p) = &args.json {
        pulltime::report::json::write_json(&agg, p)?;
    }
    Ok(())
}
