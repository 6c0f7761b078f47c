//! `pulltime report`.

use std::path::PathBuf;

use anyhow::{Context, bail};

use pulltime::report::{export, json::read_record, svg, table};

/// Arguments of `pulltime report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A record from `pull --json` or `simulate --json`.
    pub record: PathBuf,
    /// Draw the waterfall (one row per layer, a bar per phase) to this SVG file.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Which run to draw and export (1-based; default: the last).
    #[arg(long)]
    pub run: Option<usize>,
    /// Write the per-layer table as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the per-layer table as Markdown.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Runs `pulltime report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let record = read_record(&args.record)?;
    if record.runs.is_empty() {
        bail!("{} has no runs", args.record.display());
    }
    let run = match args.run {
        Some(0) => bail!("--run counts from 1"),
        Some(n) if n > record.runs.len() => {
            bail!("--run {n}: the record has {} runs", record.runs.len())
        }
        Some(n) => n - 1,
        None => record.runs.len() - 1,
    };
    print!("{}", table::pull_table(&record));
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    };
    if let Some(p) = &args.out {
        write(p, svg::waterfall(&record, run))?;
        println!("waterfall: {}", p.display());
    }
    if let Some(p) = &args.csv {
        write(p, export::csv(&record, run))?;
    }
    if let Some(p) = &args.markdown {
        write(p, export::markdown(&record, run))?;
    }
    Ok(())
}
