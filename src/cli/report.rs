//! `pulltime report`.

use std::path::PathBuf;

use anyhow::Context;

use super::export::write_file;

use pulltime::report::{export, json::read_record, svg, table};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime report run.json
  pulltime report run.json --svg waterfall.svg --run 2
  pulltime report run.json --csv layers.csv";

/// Arguments of `pulltime report`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("csv", |a| a.help("Write the per-layer table of that run as CSV to this file")))]
#[command(mut_arg("markdown", |a| a.help("Write the per-layer table of that run as Markdown to this file")))]
#[command(after_help = EXAMPLES)]
pub struct ReportArgs {
    /// A record from `pull --json` or `simulate --json`.
    pub record: PathBuf,
    /// Draw the waterfall (one row per layer, a bar per phase) to this SVG file.
    #[arg(short = 'o', long)]
    pub svg: Option<PathBuf>,
    /// Which run to draw and export (1-based; default: the last).
    #[arg(long)]
    pub run: Option<usize>,
    /// The per-layer table of that run, for machines.
    #[command(flatten)]
    pub export: super::export::TableExport,
}

/// Runs `pulltime report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let record = read_record(&args.record)?;
    if record.runs.is_empty() {
        super::exit::usage!("{} has no runs", args.record.display());
    }
    let run = match args.run {
        Some(0) => super::exit::usage!("--run counts from 1"),
        Some(n) if n > record.runs.len() => {
            super::exit::usage!(
                "--run {n}: the record has {}",
                pulltime::report::plural(record.runs.len() as u64, "run")
            )
        }
        Some(n) => n - 1,
        None => record.runs.len() - 1,
    };
    out!("{}", table::pull_table(&record));
    if let Some(p) = &args.svg {
        let chart = svg::waterfall(&record, run).context("the run was checked above")?;
        write_file(p, chart)?;
        outln!("waterfall: {}", p.display());
    }
    if let Some(p) = &args.export.csv {
        write_file(p, export::csv(&record.runs[run]))?;
    }
    if let Some(p) = &args.export.markdown {
        write_file(p, export::markdown(&record.runs[run]))?;
    }
    Ok(())
}
