//! The pull pipeline: resolve, then per layer download -> verify -> decompress ->
//! extract, in one of two modes (see [`Mode`]). [`pull_once`] does one cold pull and
//! returns its [`RunRecord`].

mod batch;
pub mod bounded;
mod decode;
pub mod destination;
pub mod download;
pub mod filesystem;
pub mod gzip;
#[cfg(pulltime_isal)]
pub mod igzip;
pub mod measure;
pub mod progress;
pub mod readers;
pub mod spool;
mod staged;
mod streaming;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::layer::{ApplyOptions, LayerError, LayerStats};
use crate::limits::Limits;
use crate::oci::platform::Platform;
use crate::oci::record::{LayerRun, RunRecord, Unobserved};
use crate::oci::reference::Reference;
use crate::registry::transport::RunClock;
use crate::registry::{
    ClientOptions, LayerDescriptor, RegistryClient, RegistryError, ResolvedImage, resolve_limited,
};
use download::Downloaded;
use progress::{LayerProgress, Progress, ProgressEvent};

/// How stages are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stages overlap as in a real puller; busy time per stage is attributed.
    Streaming,
    /// Each phase of a layer completes before the next; phase wall times are exact.
    Staged,
}

impl Mode {
    /// `streaming` / `staged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Streaming => "streaming",
            Mode::Staged => "staged",
        }
    }
}

/// Everything that shapes one pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Scheduling of stages.
    pub mode: Mode,
    /// Downloads in flight at once (docker: 3).
    pub max_concurrent_downloads: usize,
    /// Streaming: decoder threads; `None`: [`default_decoders`].
    pub decoders: Option<usize>,
    /// Streaming: threads applying layers, each beside the layers below it where
    /// their paths do not interact (`crate::layer::ApplyOrder`); `None`:
    /// [`default_appliers`].
    pub appliers: Option<usize>,
    /// Platform to pick from an index.
    pub platform: Platform,
    /// The user named the platform: a single-platform image must match it too.
    pub platform_explicit: bool,
    /// Transport and credentials.
    pub client: ClientOptions,
    /// Layer application.
    pub apply: ApplyOptions,
    /// Limits against hostile registries and images.
    pub limits: Limits,
    /// Measure each stage's busy time (clock reads around every read and hash
    /// call). Off, a streaming pull's verify, decompress and stall times are not
    /// recorded (`None`, named in `RunRecord::unobserved`): this exists to measure
    /// what the instrumentation itself costs (`pull --no-stage-timing`).
    pub stage_timing: bool,
}

/// Decoder threads of a streaming pull unless told otherwise: one per core.
/// Decoders beyond the first decode later layers ahead of their turn, into spool
/// files; that costs CPU, and on two cores it was a wash (docs/performance.md,
/// "Spools": 3 % faster on ext4, 2 % slower on tmpfs than one decoder). It is
/// kept because without it a large layer behind slow-to-extract ones cannot
/// start inflating until they are applied.
pub fn default_decoders() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

/// Threads applying layers in a streaming pull unless told otherwise: one, in
/// order. Layers built by a package manager all rewrite its database and caches
/// (`var/lib/dpkg/status`, `etc/ld.so.cache`), early in their streams, so a
/// second applier soon waits for the layers below; on the Debian-built
/// `toolchain` image it only added the cost of the indices (3 % wall, 4 % CPU;
/// docs/performance.md, "Layers side by side").
pub fn default_appliers() -> usize {
    1
}

impl PullOptions {
    /// The decoder threads this pull runs (streaming).
    pub fn decoders(&self) -> usize {
        self.decoders.unwrap_or_else(default_decoders).max(1)
    }

    /// The applier threads this pull runs (streaming).
    pub fn appliers(&self) -> usize {
        self.appliers.unwrap_or_else(default_appliers).max(1)
    }

    /// What the lab uses against its own loopback registry: streaming, 3 concurrent
    /// downloads like docker, this host's platform, plain HTTP, 60 s timeouts.
    pub fn lab_defaults() -> Self {
        PullOptions {
            mode: Mode::Streaming,
            max_concurrent_downloads: 3,
            decoders: None,
            appliers: None,
            platform: Platform::host(),
            platform_explicit: false,
            client: ClientOptions {
                scheme: crate::registry::Scheme::Http,
                credentials: None,
                timeout: std::time::Duration::from_secs(60),
                ..ClientOptions::default()
            },
            apply: ApplyOptions::default(),
            limits: Limits::default(),
            stage_timing: true,
        }
    }
}

/// A pull failed. Each variant names what the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Talking to the registry, or content that does not match its digest.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A layer could not be applied (unsafe entry, corrupt stream, I/O).
    #[error("layer {index} ({digest})")]
    Layer {
        /// Position in the manifest.
        index: usize,
        /// Blob digest.
        digest: String,
        /// Cause.
        #[source]
        source: LayerError,
    },
    /// Local files (destination, scratch space).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The destination cannot be used.
    #[error("destination {path}: {reason}")]
    Destination {
        /// The path given.
        path: String,
        /// Why not.
        reason: String,
    },
    /// The pull kept failing after starting again from scratch.
    #[error("{last} (the whole pull was restarted {})", times(*.restarts))]
    AfterRestarts {
        /// Restarts made.
        restarts: u32,
        /// The last attempt's error (part of the message, not a separate cause).
        last: Box<PullError>,
    },
    /// The user stopped the pull after some counted runs had completed: the
    /// record of those runs (its `settings.stopped` says so).
    #[error("stopped after {} completed run(s)", .0.runs.len())]
    Stopped(Box<crate::oci::record::PullRecord>),
    /// A bug or a panicked worker.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `once`, `2 times`.
fn times(n: u32) -> String {
    if n == 1 {
        "once".into()
    } else {
        format!("{n} times")
    }
}

/// The inputs both modes share.
struct Job<'a> {
    client: Arc<RegistryClient>,
    layers: &'a [LayerDescriptor],
    root: &'a Path,
    scratch: &'a Path,
    max_concurrent_downloads: usize,
    decoders: usize,
    appliers: usize,
    apply: &'a ApplyOptions,
    limits: &'a Limits,
    stage_timing: bool,
    progress: &'a [LayerProgress],
}

/// What the extraction side measured for one layer.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// When the layer's turn to be applied began.
    pub started: Instant,
    /// When it was fully applied.
    pub finished: Instant,
    /// Entry counts.
    pub stats: LayerStats,
    /// Size of the tar stream.
    pub uncompressed_bytes: u64,
    /// Busy time in the decompressor.
    pub decompress: Duration,
    /// Busy time hashing the uncompressed stream (diff_id).
    pub verify: Duration,
    /// Busy time applying entries.
    pub extract: Duration,
    /// Time waiting for the network (streaming).
    pub stall: Duration,
    /// Compressed and tar-stream bytes written to scratch files.
    pub spooled_bytes: u64,
}

/// The result of one cold pull.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// What the reference resolved to.
    pub image: ResolvedImage,
    /// The measurements.
    pub run: RunRecord,
    /// Entry counts per layer, in order.
    pub layer_stats: Vec<LayerStats>,
}

/// One cold pull of `reference` into the empty directory `root`, with a new client
/// (new connections, new tokens). `scratch` holds blobs in flight.
pub async fn pull_once(
    reference: &Reference,
    root: &Path,
    scratch: &Path,
    options: &PullOptions,
    progress: &Progress,
    run_label: &str,
) -> Result<PullOutcome, PullError> {
    let clock = RunClock::start();
    let client = Arc::new(RegistryClient::new(
        reference,
        &options.client,
        clock.clone(),
        false,
    )?);
    client.ping().await?;
    let image = resolve_limited(
        &client,
        reference.manifest_reference(),
        &options.platform,
        options.platform_explicit,
        &options.limits,
    )
    .await?;
    let resolve_s = clock.offset(Instant::now());
    progress.emit(|| ProgressEvent::RunStarted {
        label: run_label.into(),
        layers: image
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect(),
    });
    let layer_progress: Vec<LayerProgress> =
        (0..image.layers.len()).map(|i| progress.layer(i)).collect();
    let job = Job {
        client: client.clone(),
        layers: &image.layers,
        root,
        scratch,
        max_concurrent_downloads: options.max_concurrent_downloads.max(1),
        decoders: options.decoders(),
        appliers: options.appliers(),
        apply: &options.apply,
        limits: &options.limits,
        stage_timing: options.stage_timing,
        progress: &layer_progress,
    };
    let results = match options.mode {
        Mode::Streaming => streaming::run(job).await,
        Mode::Staged => staged::run(job).await,
    };
    progress.emit(|| ProgressEvent::RunFinished);
    let results = results?;
    let wall_s = clock.offset(Instant::now());
    let mut layers: Vec<LayerRun> = results
        .iter()
        .enumerate()
        .map(|(i, (d, x))| layer_run(&clock, i, &image.layers[i], d, x))
        .collect();
    // Without stage timing a streaming pull's busy times were not measured: not
    // 0, unknown. (Staged mode times its stages as wholes, which stays exact.)
    let unobserved = if options.stage_timing || options.mode == Mode::Staged {
        Vec::new()
    } else {
        for l in &mut layers {
            l.verify_s = None;
            l.decompress_s = None;
            l.stall_s = None;
        }
        ["verify_s", "decompress_s", "stall_s"]
            .into_iter()
            .map(|phase| Unobserved {
                phase: phase.into(),
                reason: "pull --no-stage-timing: stages inside a layer were not timed".into(),
            })
            .collect()
    };
    let layer_stats = results.into_iter().map(|(_, x)| x.stats).collect();
    Ok(PullOutcome {
        run: RunRecord {
            index: 0,
            wall_s,
            resolve_s,
            layers,
            requests: clock.requests(),
            connections: clock.connections(),
            ratelimit: client.ratelimit(),
            retries: client.retry_cost().retries,
            fault_s: client.retry_cost().lost.as_secs_f64(),
            restarts: 0,
            restart_s: 0.0,
            unobserved,
            ..RunRecord::default()
        },
        image,
        layer_stats,
    })
}

fn layer_run(
    clock: &RunClock,
    index: usize,
    layer: &LayerDescriptor,
    d: &Downloaded,
    x: &Extracted,
) -> LayerRun {
    // Hashing happens inline while the body is received, so it is taken out of the
    // transfer (it is counted in verify_s); the time to first byte stays whole.
    // Time lost to faults is kept out of the throughput too.
    let transfer = (d.finished - d.started)
        .saturating_sub(d.ttfb)
        .saturating_sub(d.hash)
        .saturating_sub(d.retry_cost.lost);
    let download = d.ttfb + transfer + d.retry_cost.lost;
    let transfer = transfer.as_secs_f64();
    let connections_opened: Vec<usize> = d
        .requests
        .iter()
        .filter_map(|&i| clock.connection_opened_by(i))
        .collect();
    let connect_s = clock
        .connections()
        .iter()
        .filter(|c| connections_opened.contains(&c.id))
        .map(|c| c.connect_s)
        .sum();
    LayerRun {
        index,
        digest: layer.digest.clone(),
        compressed_bytes: d.bytes,
        uncompressed_bytes: x.uncompressed_bytes,
        files: x.stats.files,
        dirs: x.stats.dirs,
        symlinks: x.stats.symlinks,
        hardlinks: x.stats.hardlinks,
        whiteouts: x.stats.whiteouts,
        skipped_devices: x.stats.skipped_devices,
        skipped_xattrs: x.stats.skipped_xattrs,
        start_s: clock.offset(d.started),
        end_s: clock.offset(x.finished),
        download_s: Some(download.as_secs_f64()),
        ttfb_s: Some(d.ttfb.as_secs_f64()),
        redirect_s: Some(d.redirect.as_secs_f64()),
        throughput_bps: Some(if transfer > 0.0 {
            d.bytes as f64 / transfer
        } else {
            0.0
        }),
        verify_s: Some((d.hash + x.verify).as_secs_f64()),
        decompress_s: Some(x.decompress.as_secs_f64()),
        extract_s: Some(x.extract.as_secs_f64()),
        stall_s: Some(x.stall.as_secs_f64()),
        queued_s: Some(
            x.started
                .saturating_duration_since(d.finished)
                .as_secs_f64(),
        ),
        retries: d.retry_cost.retries,
        resumes: d.resumes,
        resumed_bytes: d.resumed_bytes,
        discarded_bytes: d.discarded_bytes,
        spooled_bytes: Some(x.spooled_bytes),
        fault_s: d.retry_cost.lost.as_secs_f64(),
        connections_opened,
        connect_s: Some(connect_s),
    }
}

/// Fails when the uncompressed stream does not match the config's diff_id.
fn check_diff_id(index: usize, layer: &LayerDescriptor, actual: &str) -> Result<(), PullError> {
    if actual != layer.diff_id {
        return Err(RegistryError::DiffIdMismatch {
            what: format!(
                "uncompressed layer {index} ({}) against the config's rootfs.diff_ids",
                layer.digest
            ),
            expected: layer.diff_id.clone(),
            actual: actual.into(),
        }
        .into());
    }
    Ok(())
}

/// Combines download and extraction results, reporting the root cause of a failure:
/// a download error (other than a cancellation it caused) beats the extraction error
/// it provoked; otherwise the extraction error.
fn pick_error(
    downloads: Vec<Result<Downloaded, RegistryError>>,
    extracted: Result<Vec<Extracted>, PullError>,
    n: usize,
) -> Result<Vec<(Downloaded, Extracted)>, PullError> {
    let mut ok = Vec::with_capacity(n);
    let mut first_cancel = None;
    for d in downloads {
        match d {
            Ok(d) => ok.push(d),
            Err(RegistryError::Cancelled(m)) => {
                first_cancel.get_or_insert(m);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let extracted = extracted?;
    if let Some(m) = first_cancel {
        return Err(RegistryError::Cancelled(m).into());
    }
    if ok.len() != n || extracted.len() != n {
        return Err(PullError::Internal(format!(
            "{} of {n} layers downloaded, {} applied",
            ok.len(),
            extracted.len()
        )));
    }
    Ok(ok.into_iter().zip(extracted).collect())
}
