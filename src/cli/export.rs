//! The export flags that `report`, `simulate` and `compare` share, and the one
//! way they write files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pulltime::report::table::{to_csv, to_markdown};

/// `--csv` and `--markdown`: the table the command prints, for machines.
#[derive(Debug, Clone, clap::Args)]
pub struct TableExport {
    /// Write the table as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the table as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

impl TableExport {
    /// Writes `headers` and `rows` to the files asked for.
    pub fn write_table(&self, headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
        if let Some(p) = &self.csv {
            write_file(p, to_csv(headers, rows))?;
        }
        if let Some(p) = &self.markdown {
            write_file(p, to_markdown(headers, rows))?;
        }
        Ok(())
    }
}

/// Writes an exported file, naming it when that fails.
pub fn write_file(path: &Path, text: String) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
