//! `pulltime calibrate`.

use std::path::PathBuf;

use anyhow::Context;

use pulltime::calibrate::{CalibrateOptions, calibrate};

/// Arguments of `pulltime calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Directory on the filesystem pulls extract to (probes run in a temporary
    /// directory inside it and are removed). Default: the system temp dir.
    #[arg(long)]
    pub dest: Option<PathBuf>,
    /// Write the host profile (TOML) here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name to put in the profile.
    #[arg(long, default_value = "calibrated")]
    pub name: String,
    /// Smaller probes (about 10 s; less precise).
    #[arg(long)]
    pub quick: bool,
    /// Skip the probes against the embedded registry (cold streaming pulls of a
    /// synthetic image, 64 MiB fetches over loopback): a pull's start-up,
    /// per-request, loopback and serving costs are then zero in the profile, and
    /// its streaming CPU factor 1.
    #[arg(long)]
    pub no_pull_probe: bool,
}

/// Runs `pulltime calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let dir = args.dest.clone().unwrap_or_else(std::env::temp_dir);
    if !dir.is_dir() {
        anyhow::bail!("--dest {} is not a directory", dir.display());
    }
    let options = if args.quick {
        CalibrateOptions {
            content_bytes: 16 << 20,
            small_files: 1000,
            large_bytes: 32 << 20,
            repeats: 1,
            pull_probe: !args.no_pull_probe,
            probe_scale: 0.02,
        }
    } else {
        CalibrateOptions {
            pull_probe: !args.no_pull_probe,
            ..CalibrateOptions::default()
        }
    };
    eprintln!(
        "calibrating on {} (sha256, gzip, zstd, extraction probes, pulls from the embedded registry)...",
        dir.display()
    );
    let mut profile = calibrate(&dir, options).context("calibrating")?;
    profile.name = args.name;
    let text = profile.to_toml();
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    eprintln!("{}", profile.summary());
    Ok(())
}
