//! The JSON record of a pull: one type shared by measured and simulated pulls, so
//! every report reads both. The schema is documented in `docs/json.md`.

use serde::{Deserialize, Serialize};

use super::stats::Stats;

mod http;
pub use http::{ConnectionRecord, RateLimit, RequestKind, RequestRecord};

/// Bumped when a field changes meaning or disappears; new fields do not bump it.
/// Version 2: a phase that could not be observed (a puller other than pulltime
/// does not report it) is `null` and `runs[].unobserved` says why; in version 1
/// every phase was a number. Version 1 records are still read (see
/// [`READS_SCHEMA_VERSIONS`]).
pub const SCHEMA_VERSION: u32 = 2;

/// The record versions this build reads: version 1 is version 2 with every phase observed.
pub const READS_SCHEMA_VERSIONS: [u32; 2] = [1, 2];

/// Everything known about one `pulltime pull` invocation (all of its runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRecord {
    /// Always [`SCHEMA_VERSION`] for records this build writes.
    pub schema_version: u32,
    /// `false` for a measured pull.
    pub simulated: bool,
    /// Which program wrote the record.
    pub tool: ToolInfo,
    /// When the measurement started (RFC 3339, UTC).
    pub created: String,
    /// The machine the pull ran on.
    pub host: HostInfo,
    /// The image that was pulled.
    pub image: ImageInfo,
    /// How it was pulled.
    pub settings: Settings,
    /// The program that pulled (pulltime itself, docker, containerd, ...).
    #[serde(default)]
    pub puller: PullerInfo,
    /// The counted runs, in order (warm-up runs are not kept).
    pub runs: Vec<RunRecord>,
    /// Statistics over `runs`.
    pub summary: Summary,
    /// For simulated records: the inputs the simulation used, as the simulator
    /// wrote them (`sim::SimulationInfo`; `sim::input` reads them back). They stay
    /// untyped here so that the record, like all of `oci`, knows nothing of the
    /// simulator's profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<serde_json::Value>,
}

/// Name and version of the writer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `pulltime`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// The gzip backend of the writer's build (`isal`, `zlib-ng`, `zlib-rs` or
    /// `miniz`): what pulltime's own pulls inflated with (other pullers inflate
    /// with their own). Absent in records of builds before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_backend: Option<String>,
}

impl ToolInfo {
    /// This build of pulltime, whose pulls inflate gzip with `gzip_backend`.
    pub fn this_build(gzip_backend: &str) -> ToolInfo {
        ToolInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            gzip_backend: Some(gzip_backend.into()),
        }
    }
}

/// The program that did the pull, and how it was set up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PullerInfo {
    /// `pulltime`, `docker`, `containerd`, `podman` or `skopeo-umoci`.
    pub name: String,
    /// Its version as it reports it (the daemon's, for docker and containerd).
    pub version: String,
    /// What decides its pull: storage driver or snapshotter, download concurrency,
    /// where it keeps its state; each value as the puller reports it or as it
    /// was started.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

impl Default for PullerInfo {
    /// pulltime itself: what every version 1 record was.
    fn default() -> PullerInfo {
        PullerInfo {
            name: "pulltime".into(),
            version: String::new(),
            settings: Default::default(),
        }
    }
}

impl PullerInfo {
    /// pulltime itself, in this build, with its mode and download concurrency.
    pub fn pulltime(mode: &str, max_concurrent_downloads: usize) -> PullerInfo {
        PullerInfo {
            name: "pulltime".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            settings: [
                ("mode".to_string(), mode.to_string()),
                (
                    "max_concurrent_downloads".to_string(),
                    max_concurrent_downloads.to_string(),
                ),
            ]
            .into(),
        }
    }
}

/// The machine a measurement ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    /// `linux`.
    pub os: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Filesystem type of the extraction destination (`ext4`, `tmpfs`, ...), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_filesystem: Option<String>,
    /// For ext2/3/4: whether it has a journal. Without one, file creation near
    /// files deleted in the last minute costs several times more
    /// (docs/performance.md, "The filesystem's memory").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_journal: Option<bool>,
    /// Which machine: 16 hex digits of a hash of `/etc/machine-id` (the id itself
    /// is not written). Calibrating from records refuses records of another machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// The image: resolved manifest, config and layer descriptors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The reference as normalised (`docker.io/library/python:3.9-slim`).
    pub reference: String,
    /// Digest of the manifest the reference resolved to (the index's, if it was an index).
    pub manifest_digest: String,
    /// Media type of that manifest.
    pub manifest_media_type: String,
    /// Digest of the platform manifest that was pulled.
    pub platform_manifest_digest: String,
    /// `os/arch[/variant]` that was pulled.
    pub platform: String,
    /// Digest of the image config blob.
    pub config_digest: String,
    /// Layers in manifest order.
    pub layers: Vec<LayerInfo>,
    /// Sum of `layers[].compressed_bytes`.
    pub compressed_bytes: u64,
    /// Sum of `layers[].uncompressed_bytes` (known after a pull).
    pub uncompressed_bytes: u64,
}

/// One layer's descriptor plus what the pull learnt about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Digest of the compressed blob.
    pub digest: String,
    /// Layer media type (gzip, zstd or uncompressed tar).
    pub media_type: String,
    /// Size of the blob as the manifest states it.
    pub compressed_bytes: u64,
    /// Size of the uncompressed tar stream.
    pub uncompressed_bytes: u64,
    /// The config's `rootfs.diff_ids` entry for this layer.
    pub diff_id: String,
    /// Tar entries in the layer (all types, whiteouts included).
    pub entries: u64,
}

/// How the pull was run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// `streaming` or `staged` for pulltime; the puller's name for other pullers.
    pub mode: String,
    /// Downloads in flight at once (0: the puller sets no limit).
    pub max_concurrent_downloads: usize,
    /// Counted runs.
    pub runs: usize,
    /// Warm-up runs done before them (not counted).
    pub warmup: usize,
    /// Requested platform.
    pub platform: String,
    /// `http` or `https`.
    pub scheme: String,
    /// pulltime streaming: decoder threads (`pull --decoders`; by default one
    /// per core). Absent for other pullers, staged pulls and simulations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoders: Option<usize>,
    /// pulltime streaming: threads applying layers, each beside the layers below
    /// it where their paths do not interact (`pull --appliers`; by default 1, in
    /// order). Absent for other pullers, staged pulls and simulations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliers: Option<usize>,
    /// Set when the user stopped the measurement before all runs were done:
    /// `runs[]` then holds only the completed ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One cold pull.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// 0-based index among counted runs.
    pub index: usize,
    /// Wall time of the whole pull, resolve included.
    pub wall_s: f64,
    /// Token, manifest(s) and config: everything before the first layer request.
    pub resolve_s: f64,
    /// Per layer, in manifest order.
    pub layers: Vec<LayerRun>,
    /// Every HTTP request, in the order they started.
    pub requests: Vec<RequestRecord>,
    /// Every new TCP(+TLS) connection.
    pub connections: Vec<ConnectionRecord>,
    /// Docker Hub rate-limit headers seen on manifest responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<RateLimit>,
    /// Retried requests over the whole run (resolve and layers), resumed bodies included.
    #[serde(default)]
    pub retries: u32,
    /// Time lost to faults over the whole run (overlapping layers add up).
    #[serde(default)]
    pub fault_s: f64,
    /// Whole-pull restarts: a blob that did not match its digest after its bytes had
    /// been applied (streaming) throws the root filesystem away and starts again.
    #[serde(default)]
    pub restarts: u32,
    /// Wall time of the attempts thrown away by restarts (not in `wall_s`).
    #[serde(default)]
    pub restart_s: f64,
    /// The phases this run could not observe (they are `null`), each with the reason.
    #[serde(default)]
    pub unobserved: Vec<Unobserved>,
    /// For pullers observed through pulltime's recording proxy: whether the run
    /// fetched every byte of every blob, i.e. was really cold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold: Option<ColdCheck>,
    /// CPU used by the puller's processes over the run (for other pullers: the
    /// daemon, its children and the client command, read from `/proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuUsage>,
    /// Other pullers: every per-layer signal the puller gave (docker's progress
    /// statuses but "Downloading" and "Extracting" after the first, containerd's
    /// snapshot events, podman's and umoci's log lines), in order of arrival.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub puller_events: Vec<PullerEvent>,
}

/// One signal from another puller about one layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PullerEvent {
    /// The layer's position in the manifest.
    pub layer: usize,
    /// What it said (`Download complete`, `snapshot commit`, ...).
    pub event: String,
    /// When it arrived, from the run start.
    pub at_s: f64,
}

/// A phase a run could not observe, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unobserved {
    /// The key that is `null`, e.g. `decompress_s`, in every layer of the run.
    pub phase: String,
    /// Why it could not be seen, e.g. "docker decompresses inside extraction".
    pub reason: String,
}

/// What the recording proxy saw of the blobs: was the run cold?
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColdCheck {
    /// Every layer blob was fetched in full.
    pub all_bytes_fetched: bool,
    /// Layer blob bytes the proxy passed to the puller.
    pub fetched_bytes: u64,
    /// Sum of the layers' sizes in the manifest.
    pub expected_bytes: u64,
    /// The config blob was fetched too (containerd keeps it between runs: see docs/peers.md).
    #[serde(default)]
    pub config_fetched: bool,
    /// Layers (digests) the puller did not fetch in full: it had them already.
    #[serde(default)]
    pub not_fetched: Vec<String>,
}

/// User and system CPU seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuUsage {
    /// User-mode CPU seconds.
    pub user_s: f64,
    /// Kernel-mode CPU seconds.
    pub system_s: f64,
    /// The processes counted (command names, with their children).
    #[serde(default)]
    pub processes: Vec<String>,
}

/// Times and counts for one layer in one run. Times are seconds; `start_s`/`end_s`
/// are offsets from the start of the run (for other pullers: the first and the last
/// sign of the layer, from the proxy or the puller's events). A phase is `None`
/// (`null`) when the puller could not be observed doing it; `RunRecord::unobserved`
/// says why. For other pullers the counts (`files`, `dirs`, ...) and
/// `uncompressed_bytes` are the layer tar's own, read by pulltime from the blob.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayerRun {
    /// Position in the manifest.
    pub index: usize,
    /// Blob digest.
    pub digest: String,
    /// Compressed bytes received.
    pub compressed_bytes: u64,
    /// Bytes of tar stream after decompression.
    pub uncompressed_bytes: u64,
    /// Regular files created (hard links not included).
    pub files: u64,
    /// Directories created or merged.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Device nodes not created because the process may not (counted, not fatal).
    pub skipped_devices: u64,
    /// Extended attributes not set because the process may not, or the
    /// filesystem cannot (counted, not fatal). Absent in records written before
    /// pulltime set them.
    #[serde(default)]
    pub skipped_xattrs: u64,
    /// When the layer's blob request started.
    pub start_s: f64,
    /// When the layer was fully applied to the root filesystem.
    pub end_s: f64,
    /// Blob request start to last byte received (redirect hop and TTFB included),
    /// minus the time spent hashing inline (counted in `verify_s`).
    pub download_s: Option<f64>,
    /// Request start to the response headers of the request that carried the body.
    pub ttfb_s: Option<f64>,
    /// Time spent on a redirect hop (registry 307 to a CDN), 0 when none.
    pub redirect_s: Option<f64>,
    /// Compressed bytes per second over `download_s - ttfb_s`.
    pub throughput_bps: Option<f64>,
    /// Time hashing (compressed digest and uncompressed diff_id).
    pub verify_s: Option<f64>,
    /// Time inside the decompressor.
    pub decompress_s: Option<f64>,
    /// Time applying tar entries to the root filesystem.
    pub extract_s: Option<f64>,
    /// Streaming mode: time extraction waited for bytes from the network.
    pub stall_s: Option<f64>,
    /// Streaming mode: time between the download finishing and the layer's turn to be
    /// applied (layers are applied in order).
    pub queued_s: Option<f64>,
    /// Requests for this blob retried after a transient failure, plus bodies resumed.
    #[serde(default)]
    pub retries: u32,
    /// Bodies cut off mid-way and continued (with `Range`, or by re-fetching).
    #[serde(default)]
    pub resumes: u32,
    /// Bytes not fetched again because a `Range` request continued the body.
    #[serde(default)]
    pub resumed_bytes: u64,
    /// Bytes received twice because the server ignored `Range` (dropped, not hashed twice).
    #[serde(default)]
    pub discarded_bytes: u64,
    /// pulltime: bytes of this layer, compressed and tar stream together, that
    /// went through a scratch file instead of memory. Streaming keeps in memory
    /// what its reader is tailing and spools what runs ahead of it; staged writes
    /// the blob and the tar stream whole. Absent for other pullers and simulations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spooled_bytes: Option<u64>,
    /// Time lost to faults: failed attempts, backoff waits, stalls before a resume.
    /// Included in `download_s`, not in the throughput.
    #[serde(default)]
    pub fault_s: f64,
    /// The connections (their `id` in `connections[]`) that this layer's
    /// requests opened: its blob GET, the redirect's hop, resumed ranges. Empty
    /// when every request went over a connection already open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections_opened: Vec<usize>,
    /// Their set-up time (DNS, TCP, TLS), part of `ttfb_s`; 0 when none was
    /// opened; null when not known (other pullers, older records).
    #[serde(default)]
    pub connect_s: Option<f64>,
}

/// Statistics over the counted runs. A phase's statistics are `None` (`null`) when
/// some run did not observe it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Number of counted runs.
    pub runs: usize,
    /// Whole-pull wall time.
    pub wall_s: Stats,
    /// Resolve phase.
    pub resolve_s: Stats,
    /// Per run, the sum over layers of `download_s`.
    pub download_s: Option<Stats>,
    /// Per run, the sum over layers of `verify_s`.
    pub verify_s: Option<Stats>,
    /// Per run, the sum over layers of `decompress_s`.
    pub decompress_s: Option<Stats>,
    /// Per run, the sum over layers of `extract_s`.
    pub extract_s: Option<Stats>,
    /// The same per layer.
    pub layers: Vec<LayerSummary>,
}

/// Statistics of one layer's phases over the counted runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Blob digest.
    pub digest: String,
    /// Download.
    pub download_s: Option<Stats>,
    /// Time to first byte.
    pub ttfb_s: Option<Stats>,
    /// Verify.
    pub verify_s: Option<Stats>,
    /// Decompress.
    pub decompress_s: Option<Stats>,
    /// Extract.
    pub extract_s: Option<Stats>,
}

impl RunRecord {
    /// Sum of one per-layer time over all layers; `None` when some layer did not
    /// observe it (a partial sum would look like a whole one).
    pub fn layer_sum(&self, phase: impl Fn(&LayerRun) -> Option<f64>) -> Option<f64> {
        self.layers.iter().map(phase).sum()
    }
}

/// Statistics of a value that every run may or may not have: `None` unless all do.
fn stats_of_observed(values: impl Iterator<Item = Option<f64>>) -> Option<Stats> {
    let values: Option<Vec<f64>> = values.collect();
    values.map(|v| Stats::of(&v))
}

impl Summary {
    /// Computes the statistics of a set of runs.
    pub fn of(runs: &[RunRecord]) -> Summary {
        let over =
            |f: &dyn Fn(&RunRecord) -> f64| Stats::of(&runs.iter().map(f).collect::<Vec<_>>());
        let sum = |f: fn(&LayerRun) -> Option<f64>| {
            stats_of_observed(runs.iter().map(|r| r.layer_sum(f)))
        };
        let layer_count = runs.first().map_or(0, |r| r.layers.len());
        let layers = (0..layer_count)
            .map(|i| {
                let per = |f: fn(&LayerRun) -> Option<f64>| {
                    stats_of_observed(runs.iter().map(|r| f(&r.layers[i])))
                };
                LayerSummary {
                    digest: runs[0].layers[i].digest.clone(),
                    download_s: per(|l| l.download_s),
                    ttfb_s: per(|l| l.ttfb_s),
                    verify_s: per(|l| l.verify_s),
                    decompress_s: per(|l| l.decompress_s),
                    extract_s: per(|l| l.extract_s),
                }
            })
            .collect();
        Summary {
            runs: runs.len(),
            wall_s: over(&|r| r.wall_s),
            resolve_s: over(&|r| r.resolve_s),
            download_s: sum(|l| l.download_s),
            verify_s: sum(|l| l.verify_s),
            decompress_s: sum(|l| l.decompress_s),
            extract_s: sum(|l| l.extract_s),
            layers,
        }
    }
}
