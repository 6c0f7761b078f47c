//! `pulltime compare --puller docker,containerd,podman,pulltime REF`: the same image
//! pulled cold by several pullers, in rotating order, side by side.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use pulltime::oci::record::PullRecord;
use pulltime::oci::reference::Reference;
use pulltime::peers::{PullerKind, Session, SessionOptions};
use pulltime::pipeline::PullOptions;
use pulltime::pipeline::measure::MeasureOptions;
use pulltime::pipeline::progress::Progress;
use pulltime::report::compare::{Entry, comparison_rows, comparison_table};
use pulltime::report::{json, svg, table};

/// What `compare --puller` needs beyond the image.
#[derive(Debug, clap::Args)]
pub struct PullerCompareArgs {
    /// Compare these pullers on one registry reference, each pulling it cold
    /// (comma-separated: pulltime, docker, containerd, podman, skopeo-umoci).
    #[arg(long, value_delimiter = ',', value_parser = super::puller::parse_puller)]
    pub puller: Vec<PullerKind>,
    /// Rounds: in each, every puller pulls once, the order rotating by one each round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Where the pullers' daemons are.
    #[command(flatten)]
    pub daemons: super::puller::DaemonArgs,
    /// Write each puller's record as DIR/PULLER.json (for report, diff and baselines).
    #[arg(long, value_name = "DIR")]
    pub records: Option<PathBuf>,
    /// Draw each puller's last run as DIR/PULLER.svg (a waterfall of its layers).
    #[arg(long, value_name = "DIR")]
    pub waterfalls: Option<PathBuf>,
    /// Directory for pulltime's root filesystems and the pullers' work directories.
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
    /// How to reach the registry: scheme, CAs, certs.d, insecure registries.
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// Connect and read timeout towards the registry, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// When docker, containerd or podman deleted an image at the end of a round
    /// and its store (docker's and podman's data root; --tmp-dir for the others)
    /// is on ext4 without a journal, start the next round this many
    /// seconds after the deletions (0: at once): creating files near files
    /// deleted in the last 6 minutes can cost several times more there.
    #[arg(long, value_name = "SECONDS", env = "PULLTIME_SETTLE", default_value_t = 361,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub settle: u64,
}

/// Runs the comparison of pullers on `image`.
pub fn run(
    image: &str,
    args: &PullerCompareArgs,
    export: &super::export::TableExport,
) -> anyhow::Result<()> {
    let reference = Reference::parse(image)?;
    let mut kinds: Vec<PullerKind> = Vec::new();
    for k in &args.puller {
        if kinds.contains(k) {
            super::exit::usage!("--puller names {} twice", k.as_str());
        }
        kinds.push(*k);
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        super::exit::usage!("--timeout must be a positive number of seconds");
    }
    // Fail before pulling if an output cannot be written.
    for dir in [&args.records, &args.waterfalls].into_iter().flatten() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut pull = PullOptions::lab_defaults();
    args.registry.apply(&reference, &mut pull.client)?;
    pull.client.timeout = timeout;
    let options = SessionOptions {
        pulltime: MeasureOptions {
            runs: 1,
            warmup: 0,
            dest: None,
            tmp_dir: args.tmp_dir.clone().unwrap_or_else(std::env::temp_dir),
            pull,
            progress: Progress::none(),
            // Each pulltime run has its own root: nothing is deleted between
            // them. The rounds settle after the other pullers' deletions below.
            settle: Duration::ZERO,
            deleted_at: None,
        },
        peers: args.daemons.options(timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let records = runtime.block_on(rounds(
        &reference,
        &kinds,
        args.runs as usize,
        &options,
        RoundOptions {
            quiet: args.quiet,
            settle: Duration::from_secs(args.settle),
        },
    ))?;

    let entries: Vec<Entry<'_>> = records
        .iter()
        .map(|(k, r)| Entry {
            label: k.as_str().into(),
            record: r,
        })
        .collect();
    outln!(
        "{reference}: {} cold pulls by each puller, in rotating order",
        args.runs
    );
    out!("{}", comparison_table(std::slice::from_ref(&entries)));
    let (headers, rows) = comparison_rows(std::slice::from_ref(&entries));
    let machine = pulltime::report::compare::comparison_machine(&[entries]);
    export.write_table(&headers, &rows, &machine)?;
    for (kind, record) in &records {
        outln!();
        outln!("{}:", kind.as_str());
        out!("{}", table::pull_table(record));
    }
    for (kind, record) in &records {
        if let Some(dir) = &args.records {
            let path = dir.join(format!("{}.json", kind.as_str()));
            json::write_record(record, &path)?;
            eprintln!("record: {}", path.display());
        }
        if let Some(dir) = &args.waterfalls {
            let last = record.runs.len().saturating_sub(1);
            if let Some(chart) = svg::waterfall(record, last) {
                let path = dir.join(format!("{}.svg", kind.as_str()));
                super::export::write_file(&path, chart)?;
                eprintln!("waterfall: {}", path.display());
            }
        }
    }
    Ok(())
}

/// How the rounds run.
#[derive(Debug, Clone, Copy)]
struct RoundOptions {
    /// No progress on stderr.
    quiet: bool,
    /// Wait out the filesystem's memory of a round's deletions before the next,
    /// up to this long after them (zero: no wait).
    settle: Duration,
}

/// `runs` rounds; in round r the pullers go in order starting at r mod n. Each
/// round's images are removed after the round, so that no removal (which on
/// ext4 slows the file creation after it) falls between two pulls of one round,
/// and the next round waits the removals out (`pipeline::filesystem`); pulltime's
/// own root filesystems and the work directories are removed only at the end.
async fn rounds(
    reference: &Reference,
    kinds: &[PullerKind],
    runs: usize,
    options: &SessionOptions,
    how: RoundOptions,
) -> anyhow::Result<Vec<(PullerKind, PullRecord)>> {
    let quiet = how.quiet;
    let mut sessions = Vec::new();
    for &k in kinds {
        if !quiet {
            eprintln!("preparing {}", k.as_str());
        }
        let session = Session::open(k, reference, options)
            .await
            .with_context(|| format!("preparing {}", k.as_str()))?;
        sessions.push(session);
    }
    let n = sessions.len();
    let mut failure = None;
    'rounds: for round in 0..runs {
        for step in 0..n {
            let s = &mut sessions[(round + step) % n];
            match s.run(true).await {
                Ok(wall) if !quiet => eprintln!(
                    "round {}/{runs}: {} {wall:.2} s",
                    round + 1,
                    s.kind().as_str()
                ),
                Ok(_) => {}
                Err(e) => {
                    failure = Some(anyhow::Error::from(e).context(format!(
                        "{} in round {}",
                        s.kind().as_str(),
                        round + 1
                    )));
                    break 'rounds;
                }
            }
        }
        // Where this round deleted: the stores of the pullers that removed an image.
        let mut deleted: Vec<PathBuf> = Vec::new();
        let tmp = &options.pulltime.tmp_dir;
        for s in &mut sessions {
            match s.remove().await {
                Ok(true) => deleted.push(s.deletes_in(tmp).to_path_buf()),
                Ok(false) => {}
                Err(e) => {
                    failure = Some(anyhow::Error::from(e).context(s.kind().as_str().to_string()));
                    break 'rounds;
                }
            }
        }
        let lingering = deleted
            .iter()
            .find(|p| pulltime::pipeline::filesystem::deletions_linger(p));
        if let Some(path) = lingering.filter(|_| round + 1 < runs) {
            let when = std::time::Instant::now();
            let stop = &options.pulltime.pull.client.cancel;
            pulltime::pipeline::filesystem::wait_out(path, when, how.settle, stop, |m| {
                if !quiet {
                    eprintln!("round {}/{runs} done; {m}", round + 1)
                }
            })
            .await;
        }
    }
    let records: Vec<(PullerKind, PullRecord)> =
        sessions.iter().map(|s| (s.kind(), s.record(0))).collect();
    for s in sessions {
        if let Err(e) = s.close().await {
            eprintln!("warning: cleaning up: {e:#}");
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(records),
    }
}
