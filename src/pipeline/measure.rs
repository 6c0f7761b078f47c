//! Repeated cold pulls: warm-up runs, counted runs, each into an emptied
//! destination with a fresh client and fresh scratch space, assembled into one
//! [`PullRecord`] with statistics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::registry::RegistryError;
use crate::registry::retry::Jitter;

use crate::oci::record::{
    HostInfo, ImageInfo, LayerInfo, PullRecord, PullerInfo, RunRecord, SCHEMA_VERSION, Settings,
    Summary, ToolInfo,
};
use crate::oci::reference::Reference;
use crate::pipeline::destination::Destination;
use crate::pipeline::progress::Progress;
use crate::pipeline::{PullError, PullOptions, PullOutcome, pull_once};

/// How many runs, and where.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// Counted runs (at least 1).
    pub runs: usize,
    /// Uncounted runs before them.
    pub warmup: usize,
    /// Keep the last run's root filesystem here (must be empty or absent).
    pub dest: Option<PathBuf>,
    /// Where temporary root filesystems and in-flight blobs go.
    pub tmp_dir: PathBuf,
    /// The pull itself.
    pub pull: PullOptions,
    /// Where progress events go ([`Progress::none`]: nowhere).
    pub progress: Progress,
    /// Before a run that follows a deletion on a filesystem that remembers
    /// deletions (ext4 without a journal), wait until it no longer slows file
    /// creation ([`super::filesystem`]): after [`MeasureOptions::deleted_at`],
    /// and between runs into a `dest` on another filesystem than `tmp_dir`
    /// (emptied between runs; on the same one, the runs before the last go to
    /// temporary roots and nothing is deleted). At most this long after the
    /// deletion ([`super::filesystem::WINDOW`]; zero: never wait).
    pub settle: Duration,
    /// When the destination was last emptied before the first run, if it was
    /// (`pull --force`).
    pub deleted_at: Option<std::time::Instant>,
}

/// Pulls `reference` `warmup + runs` times, cold each time, and returns the record.
/// On failure the destination is emptied (and removed if pulltime created it).
pub async fn measure(
    reference: &Reference,
    options: &MeasureOptions,
) -> Result<PullRecord, PullError> {
    let runs = options.runs.max(1);
    let settled;
    let options = if options.pull.client.http_fallback {
        settled = settle_scheme(reference, options).await?;
        &settled
    } else {
        options
    };
    let mut given = match &options.dest {
        Some(p) => Some(Destination::given(p)?),
        None => None,
    };
    // With --dest, every run but the last unpacks into a temporary root in
    // --tmp-dir when that is on the destination's filesystem, and only the last
    // lands in --dest: nothing is then deleted between runs (see `spent`).
    // Otherwise --dest is emptied between runs and the next run waits the
    // deletion out.
    let earlier_runs_elsewhere = given
        .as_ref()
        .is_some_and(|g| super::filesystem::same_filesystem(g.path(), &options.tmp_dir));
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let progress = &options.progress;
    let mut counted: Vec<RunRecord> = Vec::with_capacity(runs);
    let mut last: Option<PullOutcome> = None;
    // Temporary roots are deleted only after the last run: on ext4 without a
    // journal, files created in the minutes after many were deleted cost several
    // times more, which would charge each run for the clean-up of the one before.
    let mut spent: Vec<Destination> = Vec::new();
    let mut deleted_at = options.deleted_at;
    let total = options.warmup + runs;
    for k in 0..total {
        let label = if k < options.warmup {
            format!("warmup {}/{}", k + 1, options.warmup)
        } else {
            format!("run {}/{}", k - options.warmup + 1, runs)
        };
        let into_given = given.is_some() && (!earlier_runs_elsewhere || k + 1 == total);
        let temp = if into_given {
            None
        } else {
            match Destination::temporary(&options.tmp_dir) {
                Ok(t) => Some(t),
                Err(e) => {
                    if let Some(g) = given.take() {
                        g.abandon();
                    }
                    return Err(e);
                }
            }
        };
        let dest = temp
            .as_ref()
            .or(given.as_ref())
            .expect("a root for every run");
        // Emptied between runs only when every run lands in it.
        if into_given && k > 0 && !earlier_runs_elsewhere {
            if let Err(source) = dest.clear() {
                let what = format!("emptying {} between runs", dest.path().display());
                if let Some(g) = given.take() {
                    g.abandon();
                }
                return Err(PullError::Io { what, source });
            }
            deleted_at = Some(std::time::Instant::now());
        }
        if let Some(when) = deleted_at.take() {
            let say = |m: &str| tracing::warn!("{m}");
            let stop = &options.pull.client.cancel;
            super::filesystem::wait_out(dest.path(), when, options.settle, stop, say).await;
        }
        match one_run(reference, dest, options, progress, &label).await {
            Ok(outcome) => {
                if let Some(Err(e)) = last.as_ref().map(|prev| same_image(prev, &outcome)) {
                    if let Some(t) = temp {
                        t.abandon();
                    }
                    if let Some(g) = given.take() {
                        g.abandon();
                    }
                    return Err(e);
                }
                if k >= options.warmup {
                    let mut run = outcome.run.clone();
                    run.index = counted.len();
                    counted.push(run);
                }
                last = Some(outcome);
            }
            Err(e) => {
                let host = host_info(dest.path());
                if let Some(t) = temp {
                    t.abandon();
                }
                if let Some(g) = given.take() {
                    g.abandon();
                }
                let stopped = options.pull.client.cancel.is_cancelled();
                return match (&last, stopped && !counted.is_empty()) {
                    (Some(last), true) => {
                        let why =
                            format!("stopped by the user after {} of {runs} runs", counted.len());
                        let mut record = assemble(reference, options, host, created, last, counted);
                        record.settings.stopped = Some(why);
                        Err(PullError::Stopped(Box::new(record)))
                    }
                    _ => Err(e),
                };
            }
        }
        spent.extend(temp);
    }
    let last = last.expect("at least one run");
    let root = given.as_ref().or(spent.last()).expect("a root");
    Ok(assemble(
        reference,
        options,
        host_info(root.path()),
        created,
        &last,
        counted,
    ))
}

/// The record of the counted runs, with the image facts of the last run.
fn assemble(
    reference: &Reference,
    options: &MeasureOptions,
    host: HostInfo,
    created: String,
    last: &PullOutcome,
    counted: Vec<RunRecord>,
) -> PullRecord {
    PullRecord {
        schema_version: SCHEMA_VERSION,
        simulated: false,
        tool: ToolInfo::this_build(crate::pipeline::gzip::gzip_backend()),
        created,
        host,
        image: image_info(reference, last),
        puller: PullerInfo::pulltime(
            options.pull.mode.as_str(),
            options.pull.max_concurrent_downloads,
        ),
        settings: Settings {
            mode: options.pull.mode.as_str().into(),
            max_concurrent_downloads: options.pull.max_concurrent_downloads,
            runs: options.runs.max(1),
            warmup: options.warmup,
            platform: options.pull.platform.to_string(),
            scheme: options.pull.client.scheme.as_str().into(),
            decoders: (options.pull.mode == super::Mode::Streaming)
                .then(|| options.pull.decoders()),
            appliers: (options.pull.mode == super::Mode::Streaming)
                .then(|| options.pull.appliers()),
            stopped: None,
        },
        summary: Summary::of(&counted),
        runs: counted,
        simulation: None,
    }
}

/// An insecure registry's scheme, found once before the runs (HTTPS, or plain
/// HTTP when it has no TLS), so that every run is timed with the same one and
/// none pays for the failed attempt.
pub(crate) async fn settle_scheme(
    reference: &Reference,
    options: &MeasureOptions,
) -> Result<MeasureOptions, PullError> {
    let client = crate::registry::RegistryClient::new(
        reference,
        &options.pull.client,
        crate::registry::transport::RunClock::start(),
        false,
    )?;
    client.ping().await?;
    let mut settled = options.clone();
    settled.pull.client.scheme = client.scheme();
    settled.pull.client.http_fallback = false;
    Ok(settled)
}

async fn one_run(
    reference: &Reference,
    dest: &Destination,
    options: &MeasureOptions,
    progress: &Progress,
    label: &str,
) -> Result<PullOutcome, PullError> {
    let policy = &options.pull.client.retry;
    let jitter = Jitter::default();
    let mut restarts = 0u32;
    let mut lost = Duration::ZERO;
    // Failed digest checks per blob: each blob gets the policy's attempts, so one
    // corrupt transfer among many layers does not use up the others' tries.
    let mut mismatches: std::collections::HashMap<String, u32> = Default::default();
    loop {
        if restarts > 0 {
            dest.clear().map_err(|source| PullError::Io {
                what: format!("emptying {} between runs", dest.path().display()),
                source,
            })?;
        }
        let root = dest.path().to_path_buf();
        // syncfs can take seconds on a busy disk: off the async workers.
        let _ = tokio::task::spawn_blocking(move || super::filesystem::flush_writes(&root)).await;
        let scratch = tempfile::Builder::new()
            .prefix("pulltime-blobs-")
            .tempdir_in(&options.tmp_dir)
            .map_err(|source| PullError::Io {
                what: format!("creating scratch space in {}", options.tmp_dir.display()),
                source,
            })?;
        let started = Instant::now();
        let result = pull_once(
            reference,
            dest.path(),
            scratch.path(),
            &options.pull,
            progress,
            label,
        )
        .await;
        match result {
            Ok(mut outcome) => {
                outcome.run.restarts = restarts;
                outcome.run.restart_s = lost.as_secs_f64();
                return Ok(outcome);
            }
            // Bytes that failed their digest were (in streaming mode) already applied:
            // the root filesystem cannot be trusted, so the whole pull starts again.
            // Each blob gets the policy's attempts; the whole pull at most twice that
            // many restarts (a registry corrupting a different layer every time must
            // not cost layers x attempts whole pulls).
            Err(e @ PullError::Registry(RegistryError::DigestMismatch { .. }))
                if restarts < 2 * policy.attempts
                    && retry_blob(&e, &mut mismatches, policy.attempts)
                    && !options.pull.client.cancel.is_cancelled() =>
            {
                restarts += 1;
                let delay = policy.backoff(restarts, &jitter);
                tracing::warn!(error = %e, restart = restarts, "restarting the pull from scratch");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = options.pull.client.cancel.cancelled() => return Err(e),
                }
                lost += started.elapsed();
            }
            Err(e) if restarts > 0 => {
                return Err(PullError::AfterRestarts {
                    restarts,
                    last: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Counts a failed digest check against its blob; true while that blob has
/// attempts left.
fn retry_blob(
    e: &PullError,
    mismatches: &mut std::collections::HashMap<String, u32>,
    attempts: u32,
) -> bool {
    let PullError::Registry(RegistryError::DigestMismatch { expected, .. }) = e else {
        return false;
    };
    let n = mismatches.entry(expected.clone()).or_default();
    *n += 1;
    *n < attempts
}

fn same_image(a: &PullOutcome, b: &PullOutcome) -> Result<(), PullError> {
    if a.image.platform_manifest_digest != b.image.platform_manifest_digest {
        return Err(PullError::Internal(format!(
            "the image changed between runs (manifest {} then {}); pin it by digest",
            a.image.platform_manifest_digest, b.image.platform_manifest_digest
        )));
    }
    Ok(())
}

fn image_info(reference: &Reference, last: &PullOutcome) -> ImageInfo {
    let layers: Vec<LayerInfo> = last
        .image
        .layers
        .iter()
        .zip(&last.run.layers)
        .zip(&last.layer_stats)
        .map(|((d, r), s)| LayerInfo {
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            compressed_bytes: d.size,
            uncompressed_bytes: r.uncompressed_bytes,
            diff_id: d.diff_id.clone(),
            entries: s.entries,
        })
        .collect();
    ImageInfo {
        reference: reference.to_string(),
        manifest_digest: last.image.manifest_digest.clone(),
        manifest_media_type: last.image.manifest_media_type.clone(),
        platform_manifest_digest: last.image.platform_manifest_digest.clone(),
        platform: last.image.platform.clone(),
        config_digest: last.image.config_digest.clone(),
        compressed_bytes: layers.iter().map(|l| l.compressed_bytes).sum(),
        uncompressed_bytes: layers.iter().map(|l| l.uncompressed_bytes).sum(),
        layers,
    }
}

/// Facts about this machine worth keeping next to its timings.
pub fn host_info(dest: &Path) -> HostInfo {
    HostInfo {
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        dest_filesystem: super::filesystem::filesystem_type(dest),
        dest_journal: super::filesystem::journal(dest),
        machine: machine_id(),
    }
}

/// This machine, as records name it: a hash of `/etc/machine-id` (or of
/// `/var/lib/dbus/machine-id`), so records can be matched to a machine without
/// carrying its id.
pub fn machine_id() -> Option<String> {
    use sha2::{Digest, Sha256};
    let id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|id| id.trim().to_string())
        .find(|id| !id.is_empty())?;
    let hash = Sha256::digest(format!("pulltime machine {id}").as_bytes());
    Some(hex::encode(&hash[..8]))
}
