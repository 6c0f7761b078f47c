//! `pulltime pull`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use pulltime::layer::ApplyOptions;
use pulltime::pipeline::measure::{MeasureOptions, measure};
use tokio_util::sync::CancellationToken;

use super::choices::ModeArg;
use pulltime::oci::platform::Platform;
use pulltime::oci::reference::Reference;
use pulltime::peers::{PullerKind, SessionOptions, measure_puller};
use pulltime::pipeline::progress::Progress;
use pulltime::pipeline::{PullError, PullOptions};
use pulltime::registry::ClientOptions;
use pulltime::registry::retry::RetryPolicy;
use pulltime::report::{json, table};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "Examples:
  pulltime pull python:3.9-slim --runs 5
  pulltime pull 127.0.0.1:5000/app:v1 --json run.json --dest ./rootfs
  pulltime pull reg.example/app:v2 --ca-cert ca.pem --user me --password-stdin
  pulltime pull REF --runs 10 --baseline main --fail-on-regression";

/// Arguments of `pulltime pull`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct PullArgs {
    /// Image reference: `python:3.9-slim`, `127.0.0.1:5000/app:v1`, `host/ns/name@sha256:...`.
    pub reference: String,
    /// Which program pulls: `pulltime`, or `docker`, `containerd`, `podman`,
    /// `skopeo-umoci`, each pulling through pulltime's recording proxy and
    /// decomposed from outside (see docs/peers.md). pulltime's own options
    /// (--mode, --max-concurrent-downloads, ...) then apply to the one uncounted
    /// pull by which pulltime learns the image's layers.
    #[arg(long, default_value = "pulltime", value_parser = super::puller::parse_puller)]
    pub puller: PullerKind,
    /// Where the other pullers' daemons are.
    #[command(flatten)]
    pub daemons: super::puller::DaemonArgs,
    /// Counted cold runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub runs: u32,
    /// Uncounted runs before the counted ones.
    #[arg(long, default_value_t = 0)]
    pub warmup: u32,
    /// `streaming` overlaps stages like a real puller; `staged` finishes each phase before the next.
    #[arg(long, value_enum, default_value_t = ModeArg::Streaming)]
    pub mode: ModeArg,
    /// Layer downloads in flight at once (docker's default is 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_concurrent_downloads: u32,
    /// Streaming: threads that decompress layers (default: one per core). Those
    /// beyond the first decode later layers ahead of their turn, into spool files
    /// in --tmp-dir.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub decoders: Option<u32>,
    /// Streaming: threads that apply layers (default 1: in order). With more, a
    /// layer is applied beside the layers below it where their paths meet no
    /// symlink; entries that interact with theirs are set aside until they are
    /// applied. The tree is the same as in order.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub appliers: Option<u32>,
    /// Platform to pull from a multi-platform image: os/arch[/variant]. Default: this host.
    #[arg(long)]
    pub platform: Option<String>,
    /// How to reach the registry: scheme, CAs, certs.d, insecure registries.
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// With --dest: empty a directory that is not empty first (everything in it
    /// is deleted; symbolic links are removed, not followed).
    #[arg(long, requires = "dest", help_heading = "Output")]
    pub force: bool,
    /// A run that follows a deletion on ext4 without a journal (--force empties
    /// --dest first; --puller removes the image after each run; --dest on
    /// another filesystem than --tmp-dir is emptied between runs) starts this
    /// many seconds after it (0: at once): creating files near files deleted in
    /// the last 6 minutes can cost several times more there.
    #[arg(long, value_name = "SECONDS", env = "PULLTIME_SETTLE", default_value_t = 361,
          value_parser = clap::value_parser!(u64).range(0..=3600), help_heading = "Output")]
    pub settle: u64,
    /// Unpack into DIR (must be empty or absent) and keep the last run's root filesystem there.
    #[arg(help_heading = "Output", long)]
    pub dest: Option<PathBuf>,
    /// Write the full JSON record to FILE (`-` for stdout; the table then goes to stderr).
    #[arg(help_heading = "Output", long)]
    pub json: Option<PathBuf>,
    /// No progress bars and no table.
    #[arg(help_heading = "Output", short, long)]
    pub quiet: bool,
    /// Connect and read timeout in seconds: a connection that cannot be set up, or a
    /// response that sends nothing, for this long fails the attempt.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Do not time stages inside a layer (no clock reads per block): decompress and
    /// verify (and stall) times are not recorded (null), and extract is the wall time of applying each layer
    /// (waits included). For measuring pulltime's own overhead.
    #[arg(long)]
    pub no_stage_timing: bool,
    /// Attempts per request, the first included (as docker: 5). Transient failures
    /// (connection errors, timeouts, 408/429/500/502/503/504) are retried with
    /// exponential backoff and jitter, honouring Retry-After; cut-off blobs resume
    /// with a Range request. 1 disables retries.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retries: u32,
    /// Directory for temporary root filesystems and blobs in flight (default: the system temp dir).
    #[arg(help_heading = "Output", long)]
    pub tmp_dir: Option<PathBuf>,
    /// Save the runs (per phase and per layer, with image facts) as baseline NAME.
    #[arg(help_heading = "Baselines and gates", long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Compare the runs with baseline NAME and say what changed.
    #[arg(help_heading = "Baselines and gates", long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Where baselines live, one JSON file per name.
    #[arg(
        help_heading = "Baselines and gates",
        long,
        default_value = ".pulltime/baselines"
    )]
    pub baseline_dir: PathBuf,
    /// How runs are compared with a baseline.
    #[command(flatten)]
    pub gate: super::diff::GateArgs,
    /// Limits against hostile registries and images.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Runs `pulltime pull`.
pub fn run(args: PullArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    // Fail before measuring if an output cannot be written.
    super::export::check_stdout_output(args.json.as_deref(), "--json")?;
    if args.save_baseline.is_some() {
        let dir = &args.baseline_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| super::exit::Usage(format!("--baseline-dir {}: {e}", dir.display())))?;
        super::export::writable_dir(dir).map_err(|e| {
            super::exit::Usage(format!(
                "--baseline-dir {}: cannot write there: {e}",
                dir.display()
            ))
        })?;
    }
    // Fail before measuring if the baseline to compare with is missing.
    let baseline = match &args.baseline {
        Some(name) => Some(super::diff::load_baseline(&args.baseline_dir, name)?),
        None => None,
    };
    if let Some(name) = &args.save_baseline {
        pulltime::report::regression::baseline_path(&args.baseline_dir, name)
            .map_err(anyhow::Error::msg)?;
    }
    if args.gate.fail_on_regression.is_some() {
        let Some(old) = &baseline else {
            super::exit::usage!("--fail-on-regression needs --baseline NAME to compare with");
        };
        if let Some(w) = pulltime::report::regression::too_few_runs(
            old.runs.len(),
            args.runs as usize,
            args.gate.significance,
        ) {
            super::exit::usage!("--fail-on-regression cannot work with these run counts: {w}");
        }
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        super::exit::usage!("--timeout must be a positive number of seconds");
    }
    if args.puller != PullerKind::Pulltime && args.platform.is_some() {
        super::exit::usage!(
            "--platform applies to --puller pulltime only: {} pulls its own host's platform",
            args.puller.as_str()
        );
    }
    if args.puller != PullerKind::Pulltime && args.dest.is_some() {
        super::exit::usage!(
            "--dest keeps pulltime's root filesystem; with --puller {} the image stays in that puller's store only until the next run",
            args.puller.as_str()
        );
    }
    if args.mode == ModeArg::Staged {
        for (flag, given) in [
            ("--decoders", args.decoders.is_some()),
            ("--appliers", args.appliers.is_some()),
        ] {
            if given {
                super::exit::usage!(
                    "{flag} applies to --mode streaming only: --mode staged decodes and applies each layer on its own, one after another"
                );
            }
        }
    }
    let stop = CancellationToken::new();
    let json_to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let options = MeasureOptions {
        runs: args.runs as usize,
        warmup: args.warmup as usize,
        dest: args.dest.clone(),
        tmp_dir: args.tmp_dir.clone().unwrap_or_else(std::env::temp_dir),
        pull: PullOptions {
            mode: args.mode.into(),
            max_concurrent_downloads: args.max_concurrent_downloads as usize,
            decoders: args.decoders.map(|d| d as usize),
            appliers: args.appliers.map(|a| a as usize),
            platform,
            platform_explicit: args.platform.is_some(),
            client: ClientOptions {
                timeout: Duration::from_secs_f64(args.timeout),
                retry: RetryPolicy {
                    attempts: args.retries,
                    ..RetryPolicy::default()
                },
                cancel: stop.clone(),
                ..ClientOptions::default()
            },
            apply: ApplyOptions::default(),
            limits: args.limits.limits(),
            stage_timing: !args.no_stage_timing,
        },
        progress: if !args.quiet && !json_to_stdout && std::io::stdout().is_terminal() {
            super::progress::bars()
        } else {
            Progress::none()
        },
        settle: Duration::from_secs(args.settle),
        deleted_at: None,
    };
    let mut options = options;
    args.registry.apply(&reference, &mut options.pull.client)?;
    // Last, once every check has passed: nothing is deleted for a command that
    // is then refused.
    if let (true, Some(dest)) = (args.force, &args.dest)
        && empty_dir(dest)?
    {
        options.deleted_at = Some(std::time::Instant::now());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let quiet = args.quiet;
    let result = runtime.block_on(async {
        super::interrupt::install(stop.clone());
        match args.puller {
            PullerKind::Pulltime => measure(&reference, &options)
                .await
                .map_err(anyhow::Error::from),
            kind => {
                let session = SessionOptions {
                    peers: args.daemons.options(Duration::from_secs_f64(args.timeout)),
                    pulltime: options.clone(),
                };
                let report = |label: &str, wall: f64| {
                    if !quiet {
                        eprintln!("{} {label}: {wall:.2} s", kind.as_str());
                    }
                };
                measure_puller(
                    kind,
                    &reference,
                    &session,
                    options.runs,
                    options.warmup,
                    report,
                )
                .await
                .map_err(anyhow::Error::from)
            }
        }
    });
    if result.is_err() && stop.is_cancelled() {
        let kept = match &args.dest {
            Some(d) if d.exists() => format!("{} was emptied", d.display()),
            _ => "no root filesystem was kept".into(),
        };
        // The runs completed before the stop are measurements: keep them.
        let completed = match result {
            Err(e) => match e.downcast::<PullError>() {
                Ok(PullError::Stopped(record)) => Some(record),
                _ => None,
            },
            Ok(_) => None,
        };
        let Some(record) = completed else {
            return Err(super::interrupt::Interrupted(format!(
                "the pull of {reference} was stopped and {kept}"
            ))
            .into());
        };
        let mut saved = String::new();
        if let Some(path) = &args.json {
            json::write_record(&record, path)?;
            saved = format!("; their record is in {}", path.display());
        }
        if !args.quiet {
            eprint!("{}", table::pull_table(&record));
        }
        return Err(super::interrupt::Interrupted(format!(
            "the pull of {reference} was stopped after {} of {} runs{saved}; {kept}",
            record.runs.len(),
            record.settings.runs
        ))
        .into());
    }
    let record = result.map_err(|e| {
        let full = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        });
        if full {
            let rootfs = match &args.dest {
                Some(d) => d.display().to_string(),
                None => format!("a temporary directory in {}", options.tmp_dir.display()),
            };
            e.context(format!(
                "pulling {reference}: the disk is full (root filesystem: {rootfs}; blobs in flight: {}); nothing was kept: free some space or choose other directories with --dest and --tmp-dir",
                options.tmp_dir.display()
            ))
        } else {
            e.context(format!("pulling {reference}"))
        }
    })?;
    // The table first: if a file cannot be written after all, the results
    // were still shown.
    if !args.quiet {
        let text = table::pull_table(&record);
        if json_to_stdout {
            eprint!("{text}");
        } else {
            out!("{text}");
        }
    }
    if let Some(path) = &args.json {
        json::write_record(&record, path)?;
    }
    // A run that was not cold measures something else: never a baseline, never a gate.
    let warm: Vec<usize> = record
        .runs
        .iter()
        .filter(|r| r.cold.as_ref().is_some_and(|c| !c.all_bytes_fetched))
        .map(|r| r.index + 1)
        .collect();
    if !warm.is_empty() && (args.save_baseline.is_some() || args.baseline.is_some()) {
        anyhow::bail!(
            "run(s) {warm:?} were not cold ({} already had some layers, see runs[].cold): not saved as a baseline, not compared",
            args.puller.as_str()
        );
    }
    let compared = match (&baseline, &args.baseline) {
        (Some(old), Some(name)) => {
            // Keep stdout a clean record when it carries the JSON.
            let mut out: Box<dyn std::io::Write> = if json_to_stdout {
                Box::new(std::io::stderr())
            } else {
                Box::new(pulltime::report::stdout::Stdout)
            };
            writeln!(out)?;
            super::diff::compare_and_gate(
                old,
                &format!("baseline {name:?}"),
                &record,
                "this pull",
                &args.gate,
                &mut out,
            )
        }
        _ => Ok(()),
    };
    if let Some(name) = &args.save_baseline {
        let path = super::diff::save_baseline(&args.baseline_dir, name, &record)?;
        eprintln!("saved baseline {name:?} to {}", path.display());
    }
    compared
}

/// `--force`: deletes what is in `dir` (not `dir` itself), without following
/// symbolic links; a missing `dir` is fine. Whether anything was removed.
fn empty_dir(dir: &std::path::Path) -> anyhow::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("--force: reading {}", dir.display()))
            );
        }
    };
    if std::fs::canonicalize(dir).is_ok_and(|c| c.parent().is_none()) {
        super::exit::usage!("--force will not empty the root directory");
    }
    let mut removed_any = false;
    for entry in entries {
        removed_any = true;
        let path = entry?.path();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let removed = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("--force: removing {}", path.display()))?;
    }
    Ok(removed_any)
}
