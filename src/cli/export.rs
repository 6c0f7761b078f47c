//! The export flags that `report`, `simulate` and `compare` share, and the one
//! way they write files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pulltime::report::table::{MachineTable, to_markdown};

/// `--csv` and `--markdown`: the table the command prints, for machines.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct TableExport {
    /// Write the table as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the table as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

impl TableExport {
    /// Checks, before any work, that the files asked for can be written.
    pub fn check(&self) -> anyhow::Result<()> {
        check_output(self.csv.as_deref(), "--csv")?;
        check_output(self.markdown.as_deref(), "--markdown")
    }

    /// Writes the table to the files asked for: CSV from `machine` (raw
    /// numbers, units in the headers), Markdown as people read it.
    pub fn write_table(
        &self,
        headers: &[&str],
        rows: &[Vec<String>],
        machine: &MachineTable,
    ) -> anyhow::Result<()> {
        if let Some(p) = &self.csv {
            write_file(p, machine.to_csv())?;
        }
        if let Some(p) = &self.markdown {
            write_file(p, to_markdown(headers, rows))?;
        }
        Ok(())
    }
}

/// Writes an exported file, naming it when that fails.
pub fn write_file(path: &Path, text: String) -> anyhow::Result<()> {
    pulltime::report::json::write_whole(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Checks that `path` (given to `flag`) can be written, before any work starts:
/// its directory exists and this user may write there, and it is not a
/// directory itself. `-` (stdout) passes only where [`check_stdout_output`]
/// allows it.
pub fn check_output(path: Option<&Path>, flag: &str) -> anyhow::Result<()> {
    if path.is_some_and(|p| p.as_os_str() == "-") {
        super::exit::usage!("{flag} -: this output goes to a file only; give a file name");
    }
    check_stdout_output(path, flag)
}

/// [`check_output`] for a flag that may also write to stdout (`-`): the JSON
/// records of `pull`, `simulate` and `aggregate`, whose other output then goes
/// to stderr or is left out.
pub fn check_stdout_output(path: Option<&Path>, flag: &str) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    if path.as_os_str() == "-" {
        return Ok(());
    }
    if path.is_dir() {
        super::exit::usage!(
            "{flag} {}: is a directory; give a file name",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        super::exit::usage!(
            "{flag} {}: directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    writable_dir(parent).map_err(|e| {
        super::exit::Usage(format!(
            "{flag} {}: cannot write in {}: {e}",
            path.display(),
            parent.display()
        ))
    })?;
    Ok(())
}

/// Whether this user may create files in `dir` (access(2) with W_OK|X_OK,
/// which also sees read-only filesystems).
pub fn writable_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: access(2) on a NUL-terminated path we own.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
