//! `pulltime calibrate`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use pulltime::calibrate::{CalibrateOptions, calibrate};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime calibrate --out host.toml
  pulltime calibrate --dest /var/tmp/pulls --quick
  pulltime calibrate --from-records runs/*.json --out fitted.toml";

/// Arguments of `pulltime calibrate`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CalibrateArgs {
    /// Directory on the filesystem pulls extract to (probes run in a temporary
    /// directory inside it and are removed; created, and removed at the end, if it
    /// does not exist, as pull --dest). Default: the system temp dir.
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
    /// Fit the profile to measured pulls instead of probing: the per-layer phase
    /// times of these records (any puller's, this machine's only) by
    /// non-negative least squares, with every residual shown.
    #[arg(long, value_name = "RECORD.json", num_args = 1..)]
    pub from_records: Vec<PathBuf>,
    /// With --from-records: the profile to start from and to check against
    /// (default: the built-in one). Costs the records do not identify stay its.
    #[arg(long, value_name = "PROFILE.toml")]
    pub base: Option<PathBuf>,
    /// With --from-records: whose fit goes into the profile (default: pulltime's
    /// when its records are given, else the only puller's).
    #[arg(long, value_parser = super::puller::parse_puller)]
    pub puller: Option<pulltime::peers::PullerKind>,
    /// With --from-records: the network profile the records were pulled over
    /// (name or TOML file). pulltime's streaming CPU factor is then fitted to
    /// their wall times, by simulating each record's image over it.
    #[arg(long)]
    pub network: Option<String>,
    /// With --network: the registry ran on this host (`pulltime serve`), sharing
    /// the pull's cores; implied by an unshaped network (loopback).
    #[arg(long)]
    pub registry_on_host: bool,
    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `pulltime calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    if !args.from_records.is_empty() {
        return super::calibrate_fit::run(&args);
    }
    for (set, flag) in [
        (args.base.is_some(), "--base"),
        (args.puller.is_some(), "--puller"),
        (args.network.is_some(), "--network"),
        (args.registry_on_host, "--registry-on-host"),
    ] {
        if set {
            anyhow::bail!("{flag} goes with --from-records");
        }
    }
    let dir = args.dest.clone().unwrap_or_else(std::env::temp_dir);
    // As pull --dest: a directory that does not exist yet is created (and
    // removed again at the end: the probes remove what they make in it).
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    if !created.is_empty() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating --dest {}", dir.display()))?;
    }
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
    if !args.quiet {
        eprintln!(
            "calibrating on {} (sha256, gzip, zstd, extraction probes, pulls from the embedded registry)...",
            dir.display()
        );
    }
    let result = calibrate(&dir, options);
    // Deepest first; each is empty again unless something else wrote there
    // meanwhile, and then it stays.
    for d in &created {
        let _ = std::fs::remove_dir(d);
    }
    let mut profile = result.context("calibrating")?;
    profile.name = args.name;
    write_profile(&profile, args.out.as_deref())?;
    if !args.quiet {
        eprintln!("{}", profile.summary());
    }
    Ok(())
}

/// Writes a host profile to `out`, or to stdout.
pub fn write_profile(
    profile: &pulltime::profiles::host::HostProfile,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let text = profile.to_toml();
    match out {
        Some(path) => {
            super::export::write_file(path, text.clone())?;
            eprintln!("wrote {}", path.display());
        }
        None => out!("{text}"),
    }
    Ok(())
}
