//! The pull model: a discrete-event simulation of one pull. Requests pay round
//! trips (and handshakes on new connections); transfers share bandwidth fairly,
//! each capped per connection and all together by the link; CPU stages cost what
//! the host profile says; a policy decides when each layer's processing may start.

use crate::host::HostProfile;
use crate::network::NetworkProfile;

use super::{Policy, SimImage, SimLayer};

/// A simulated pull, before it becomes a record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimRun {
    /// Whole pull.
    pub wall_s: f64,
    /// Resolve phase.
    pub resolve_s: f64,
    /// Per layer.
    pub layers: Vec<SimLayerRun>,
    /// Requests, in the order they were sent.
    pub requests: Vec<SimRequest>,
    /// New connections, in the order they were opened.
    pub connections: Vec<SimConnection>,
}

/// What a simulated request is for. The record names it as a measured pull does
/// ([`RequestKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET /v2/`, on a new connection.
    Ping,
    /// The bearer token (Docker Hub's flow).
    Token,
    /// The manifest.
    Manifest,
    /// The index the tag names.
    Index,
    /// The config blob.
    Config,
    /// A layer blob.
    Blob,
    /// A blob GET after the registry's redirect, to the blob source.
    Redirect,
}

impl RequestKind {
    /// The name records use: `ping`, `token`, `manifest`, `index`, `config`,
    /// `blob`, `redirect`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Ping => "ping",
            RequestKind::Token => "token",
            RequestKind::Manifest => "manifest",
            RequestKind::Index => "index",
            RequestKind::Config => "config",
            RequestKind::Blob => "blob",
            RequestKind::Redirect => "redirect",
        }
    }
}

/// Which end of the [`Flow`] a request or connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The registry.
    Registry,
    /// The blob source (the CDN under Docker Hub emulation).
    Blobs,
}

impl Endpoint {
    /// The label records use as the host: `registry` or `blobs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Registry => "registry",
            Endpoint::Blobs => "blobs",
        }
    }
}

/// One simulated request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimRequest {
    /// What it is for.
    pub kind: RequestKind,
    /// Where it goes.
    pub host: Endpoint,
    /// Sent at, from the pull's start.
    pub start_s: f64,
    /// Start to response headers (a new connection's set-up included).
    pub ttfb_s: f64,
    /// Headers to last body byte (0: the model times bodies per layer).
    pub body_s: f64,
    /// Body bytes.
    pub bytes: u64,
}

/// One new connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConnection {
    /// Where it goes.
    pub target: Endpoint,
    /// Opened at, from the pull's start.
    pub start_s: f64,
    /// Time to set it up (its handshake round trips).
    pub setup_s: f64,
}

/// Times of one layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimLayerRun {
    /// Request start.
    pub start_s: f64,
    /// Headers of the body response.
    pub ttfb_s: f64,
    /// Redirect hop.
    pub redirect_s: f64,
    /// Last byte.
    pub download_end_s: f64,
    /// Hashing.
    pub verify_s: f64,
    /// Decompression.
    pub decompress_s: f64,
    /// Extraction.
    pub extract_s: f64,
    /// Applied.
    pub end_s: f64,
    /// Skipped: already on the node.
    pub cached: bool,
}

/// Where blobs come from.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Registry network.
    pub registry: NetworkProfile,
    /// Blob source network (the CDN under Docker Hub emulation, else the registry).
    pub blobs: NetworkProfile,
    /// Token request before the manifest.
    pub token: bool,
    /// Blob GETs are redirected (one registry round trip, then the CDN).
    pub redirect: bool,
    /// The tag names an index (one more manifest round trip).
    pub index: bool,
    /// The registry runs on this host: serving shares the pull's cores.
    pub registry_on_host: bool,
}

/// A pool of connections to one host: idle ones are reused, others cost a handshake.
struct Pool {
    idle: usize,
    endpoint: Endpoint,
}

impl Pool {
    fn take(&mut self, net: &NetworkProfile, at: f64, conns: &mut Vec<SimConnection>) -> f64 {
        if self.idle > 0 {
            self.idle -= 1;
            0.0
        } else {
            let setup = net.connect_rtts * net.rtt_ms / 1e3;
            conns.push(SimConnection {
                target: self.endpoint,
                start_s: at,
                setup_s: setup,
            });
            setup
        }
    }
}

/// The puller's side of the network: its connection pools, and the requests and
/// connections it has made so far.
struct Client<'a> {
    flow: &'a Flow,
    host: &'a HostProfile,
    registry: Pool,
    blobs: Pool,
    requests: Vec<SimRequest>,
    connections: Vec<SimConnection>,
}

/// A blob request's response: when its body starts, and its redirect hop.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BlobResponse {
    /// Start to the body's first byte (the redirect hop included).
    ttfb_s: f64,
    /// The registry's part when redirected, else 0.
    redirect_s: f64,
}

impl<'a> Client<'a> {
    fn new(flow: &'a Flow, host: &'a HostProfile) -> Self {
        Client {
            flow,
            host,
            registry: Pool {
                idle: 0,
                endpoint: Endpoint::Registry,
            },
            blobs: Pool {
                idle: 0,
                endpoint: Endpoint::Blobs,
            },
            requests: Vec::new(),
            connections: Vec::new(),
        }
    }

    /// Logs a request with no body timing.
    fn request(
        &mut self,
        kind: RequestKind,
        host: Endpoint,
        start_s: f64,
        ttfb_s: f64,
        bytes: u64,
    ) {
        self.requests.push(SimRequest {
            kind,
            host,
            start_s,
            ttfb_s,
            body_s: 0.0,
            bytes,
        });
    }

    /// Resolves the image from `start`: ping (new connection), token, manifest(s),
    /// config. Returns when the config has arrived.
    fn resolve(&mut self, image: &SimImage, start: f64) -> f64 {
        let (flow, host) = (self.flow, self.host);
        let r = turnaround(&flow.registry, host);
        let mut t = start;
        let setup = self.registry.take(&flow.registry, t, &mut self.connections);
        self.request(RequestKind::Ping, Endpoint::Registry, t, setup + r, 0);
        t += setup + r;
        self.registry.idle += 1;
        if flow.token {
            self.request(RequestKind::Token, Endpoint::Registry, t, r, 1024);
            t += r;
        }
        let manifest = image.manifest_bytes;
        self.request(RequestKind::Manifest, Endpoint::Registry, t, r, manifest);
        t += r;
        if flow.index {
            self.request(RequestKind::Index, Endpoint::Registry, t, r, manifest);
            t += r;
        }
        // The config is a blob: same path as layers, but alone.
        let config = self.blob_request(t, RequestKind::Config);
        t += config.ttfb_s + transfer_alone(image.config_bytes, flow, host);
        self.blobs.idle += usize::from(flow.redirect);
        self.registry.idle += usize::from(!flow.redirect);
        self.registry.idle = self.registry.idle.max(1);
        t
    }

    /// A blob GET sent at `at`: to the registry, then (redirected) to the blob
    /// source.
    fn blob_request(&mut self, at: f64, kind: RequestKind) -> BlobResponse {
        let (flow, host) = (self.flow, self.host);
        let r = turnaround(&flow.registry, host);
        let setup = self
            .registry
            .take(&flow.registry, at, &mut self.connections);
        if flow.redirect {
            let hop = setup + r;
            self.registry.idle += 1;
            let cdn_setup = self
                .blobs
                .take(&flow.blobs, at + hop, &mut self.connections);
            let ttfb = hop + cdn_setup + turnaround(&flow.blobs, host);
            self.request(kind, Endpoint::Registry, at, hop, 0);
            self.request(
                RequestKind::Redirect,
                Endpoint::Blobs,
                at + hop,
                cdn_setup + turnaround(&flow.blobs, host),
                0,
            );
            BlobResponse {
                ttfb_s: ttfb,
                redirect_s: hop,
            }
        } else {
            self.request(kind, Endpoint::Registry, at, setup + r, 0);
            BlobResponse {
                ttfb_s: setup + r,
                redirect_s: 0.0,
            }
        }
    }

    /// A blob's last byte has arrived: its connection is idle again.
    fn release_blob_connection(&mut self) {
        if self.flow.redirect {
            self.blobs.idle += 1;
        } else {
            self.registry.idle += 1;
        }
    }
}

fn rtt(n: &NetworkProfile) -> f64 {
    n.rtt_ms / 1e3
}

/// Time to a response's first byte on a warm connection: the round trip plus the
/// processing on both ends.
fn turnaround(n: &NetworkProfile, host: &HostProfile) -> f64 {
    rtt(n) + host.pull.request_s
}

/// Bandwidth of blob transfers, bytes per second (infinite: unlimited).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bandwidth {
    /// Each connection's cap.
    per_connection: f64,
    /// The link's, shared by all transfers.
    link: f64,
}

/// Blob transfers' bandwidth under `flow`. An unshaped profile is the registry on
/// this host: loopback's ceiling applies.
fn blob_bandwidth(flow: &Flow, host: &HostProfile) -> Bandwidth {
    let per_connection = flow.blobs.connection_bandwidth.unwrap_or(f64::INFINITY);
    let link = flow.blobs.link_bandwidth.unwrap_or(f64::INFINITY);
    if flow.blobs.is_unshaped() && host.pull.loopback_bps > 0.0 {
        Bandwidth {
            per_connection,
            link: host.pull.loopback_bps,
        }
    } else {
        Bandwidth {
            per_connection,
            link,
        }
    }
}

/// Seconds to move `bytes` with nothing else on the link.
fn transfer_alone(bytes: u64, flow: &Flow, host: &HostProfile) -> f64 {
    let bw = blob_bandwidth(flow, host);
    let rate = bw.per_connection.min(bw.link);
    if rate.is_infinite() {
        0.0
    } else {
        bytes as f64 / rate
    }
}

/// What pulltime's streaming pipeline costs on top of its stages' CPU, for one
/// flow of bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineCpu {
    /// CPU seconds per transferred byte spent on the pull's cores by someone else:
    /// a registry on this host serving it.
    pub serve_per_byte: f64,
    /// The host's streaming CPU factor.
    pub factor: f64,
}

impl PipelineCpu {
    /// For `flow` on `host`.
    pub fn of(flow: &Flow, host: &HostProfile) -> PipelineCpu {
        PipelineCpu {
            serve_per_byte: if flow.registry_on_host {
                host.pull.serve_cpu_s_per_byte
            } else {
                0.0
            },
            factor: host.pull.stream_cpu_factor,
        }
    }
}

/// [`cpu_costs`]' result: CPU seconds of one layer's stages, each done alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCosts {
    /// Hashing the blob and the tar stream.
    pub verify: f64,
    /// Decompressing (0 for an uncompressed layer).
    pub decompress: f64,
    /// Extracting: file content, then per file and per directory.
    pub extract: f64,
}

/// CPU costs of one layer on `host`.
pub fn cpu_costs(l: &SimLayer, host: &HostProfile) -> CpuCosts {
    let verify = (l.compressed + l.uncompressed) as f64 / host.sha256_bps;
    let decompress = host
        .decompress_bps(l.compression)
        .map_or(0.0, |bps| l.uncompressed as f64 / bps);
    let extract = l.file_bytes as f64 / host.extract_bps
        + l.files as f64 * host.extract_per_file_s
        + l.dirs as f64 * host.extract_per_dir_s;
    CpuCosts {
        verify,
        decompress,
        extract,
    }
}

/// CPU seconds of one layer in a streaming pull, as its stages cost alone (before
/// `pull.stream_cpu_factor`), by the thread that does them: the download task
/// (hashing the blob and writing it to its spool as it arrives), the decoder
/// (reading the spool back, decompressing, hashing the tar stream and writing it
/// to its own spool) and the extractor (reading that spool, extracting).
pub fn stream_work(l: &SimLayer, host: &HostProfile) -> StreamWork {
    let costs = cpu_costs(l, host);
    let o = &host.pull;
    let hash = |bytes: u64| bytes as f64 / host.sha256_bps;
    StreamWork {
        transfer: hash(l.compressed) + o.spool_write_s(l.compressed),
        decode: o.spool_read_s(l.compressed)
            + costs.decompress
            + hash(l.uncompressed)
            + o.spool_write_s(l.uncompressed),
        extract: o.spool_read_s(l.uncompressed) + costs.extract,
    }
}

/// [`stream_work`]'s result: CPU seconds by thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamWork {
    /// The download task, while the body arrives.
    pub transfer: f64,
    /// The decoder thread.
    pub decode: f64,
    /// The extractor.
    pub extract: f64,
}

impl StreamWork {
    /// All of it.
    pub fn total(&self) -> f64 {
        self.transfer + self.decode + self.extract
    }
}

/// Simulates one cold pull.
pub fn simulate(
    image: &SimImage,
    flow: &Flow,
    host: &HostProfile,
    policy: Policy,
    max_downloads: usize,
) -> SimRun {
    let mut client = Client::new(flow, host);
    // pulltime sets up its client and scratch space first; daemons have done so.
    let start = match policy {
        Policy::Pulltime | Policy::Staged => host.pull.startup_s,
        Policy::Docker | Policy::Containerd => 0.0,
    };
    let resolve_s = client.resolve(image, start);
    let mut layers = download(image, &mut client, resolve_s, max_downloads);
    apply_policy(
        &mut layers,
        image,
        host,
        policy,
        resolve_s,
        PipelineCpu::of(flow, host),
    );
    SimRun {
        wall_s: layers.iter().map(|l| l.end_s).fold(resolve_s, f64::max),
        resolve_s,
        layers,
        requests: client.requests,
        connections: client.connections,
    }
}

/// Where one layer's download stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Not requested yet.
    Queued,
    /// Requested; its body arrives from `body_from` on.
    InFlight {
        /// When the body's first byte arrives.
        body_from: f64,
    },
    /// Its last byte has arrived (or it was cached: never requested).
    Done,
}

/// One layer during the downloads.
struct LayerState {
    /// Its times so far.
    run: SimLayerRun,
    /// Bytes still to arrive.
    remaining: f64,
    phase: Phase,
}

/// Downloads every layer from `start`: up to `max_downloads` in flight, sharing
/// the bandwidth fairly. Returns the layers' download times.
fn download(
    image: &SimImage,
    client: &mut Client<'_>,
    start: f64,
    max_downloads: usize,
) -> Vec<SimLayerRun> {
    let n = image.layers.len();
    let mut now = start;
    let mut layers: Vec<LayerState> = image
        .layers
        .iter()
        .map(|l| LayerState {
            run: if l.cached {
                SimLayerRun {
                    cached: true,
                    start_s: now,
                    download_end_s: now,
                    ..SimLayerRun::default()
                }
            } else {
                SimLayerRun::default()
            },
            remaining: l.compressed as f64,
            phase: if l.cached { Phase::Done } else { Phase::Queued },
        })
        .collect();
    let mut next = 0usize;
    let bandwidth = blob_bandwidth(client.flow, client.host);
    // Each step starts a request, ends a transfer or lets a body begin: bounded.
    for _ in 0..(8 * n + 16) {
        // Start requests while there is room.
        let in_flight = layers
            .iter()
            .filter(|l| matches!(l.phase, Phase::InFlight { .. }))
            .count();
        let mut room = max_downloads.max(1).saturating_sub(in_flight);
        while room > 0 && next < n {
            if layers[next].phase != Phase::Queued {
                next += 1;
                continue;
            }
            let response = client.blob_request(now, RequestKind::Blob);
            let l = &mut layers[next];
            l.run.start_s = now;
            l.run.ttfb_s = response.ttfb_s;
            l.run.redirect_s = response.redirect_s;
            l.phase = Phase::InFlight {
                body_from: now + response.ttfb_s,
            };
            next += 1;
            room -= 1;
        }
        let body_from = |l: &LayerState| match l.phase {
            Phase::InFlight { body_from } => Some(body_from),
            Phase::Queued | Phase::Done => None,
        };
        let active: Vec<usize> = (0..n)
            .filter(|&i| body_from(&layers[i]).is_some_and(|b| b <= now + 1e-12))
            .collect();
        let waiting: Vec<f64> = layers
            .iter()
            .filter_map(body_from)
            .filter(|&b| b > now + 1e-12)
            .collect();
        // Nothing in flight: there was room, so every layer has been requested.
        if active.is_empty() && waiting.is_empty() {
            break;
        }
        let rate = if active.is_empty() {
            0.0
        } else {
            bandwidth
                .per_connection
                .min(bandwidth.link / active.len() as f64)
        };
        // Next event: a transfer finishing, or a response starting its body.
        let finish = active
            .iter()
            .map(|&i| {
                if rate.is_infinite() {
                    0.0
                } else {
                    layers[i].remaining / rate
                }
            })
            .fold(f64::INFINITY, f64::min);
        let arrival = waiting
            .iter()
            .map(|b| b - now)
            .fold(f64::INFINITY, f64::min);
        let dt = finish.min(arrival).max(0.0);
        for &i in &active {
            let l = &mut layers[i];
            l.remaining -= if rate.is_infinite() {
                l.remaining
            } else {
                rate * dt
            };
        }
        now += dt;
        for &i in &active {
            let l = &mut layers[i];
            if l.remaining <= 1e-6 {
                l.phase = Phase::Done;
                l.run.download_end_s = now;
                client.release_blob_connection();
            }
        }
    }
    layers.into_iter().map(|l| l.run).collect()
}

/// Decides when each layer's CPU work runs and when it is applied, from its
/// download times; fills in the CPU costs. `pipeline` only matters to pulltime's
/// streaming.
pub fn apply_policy(
    layers: &mut [SimLayerRun],
    image: &SimImage,
    host: &HostProfile,
    policy: Policy,
    resolve_s: f64,
    pipeline: PipelineCpu,
) {
    if policy == Policy::Pulltime {
        return stream_policy(layers, image, host, resolve_s, pipeline);
    }
    let mut prev_end = resolve_s;
    let last_download = layers
        .iter()
        .map(|l| l.download_end_s)
        .fold(resolve_s, f64::max);
    for (i, l) in image.layers.iter().enumerate() {
        let lr = &mut layers[i];
        if lr.cached {
            lr.end_s = prev_end;
            continue;
        }
        let CpuCosts {
            verify,
            decompress,
            extract,
        } = cpu_costs(l, host);
        lr.verify_s = verify;
        lr.decompress_s = decompress;
        lr.extract_s = extract;
        let (compressed_hash, uncompressed_hash) = (
            l.compressed as f64 / host.sha256_bps,
            l.uncompressed as f64 / host.sha256_bps,
        );
        lr.end_s = match policy {
            Policy::Pulltime => unreachable!("streaming is simulated by stream_policy"),
            // Docker: a layer is extracted after its download completes (the digest
            // is checked while downloading), one layer at a time, in order.
            Policy::Docker => prev_end.max(lr.download_end_s) + decompress + extract,
            // containerd (classic): fetch everything, then unpack layer by layer.
            Policy::Containerd => {
                prev_end.max(last_download) + decompress + extract + uncompressed_hash
            }
            // pulltime --mode staged: fetch everything, then per layer verify,
            // decompress, verify the tar, extract.
            Policy::Staged => {
                prev_end.max(last_download)
                    + compressed_hash
                    + decompress
                    + uncompressed_hash
                    + extract
            }
        };
        prev_end = lr.end_s;
    }
}

/// pulltime streaming: each download task hashes and spools its blob as it
/// arrives; decoder threads (one per core) take layers in manifest order and
/// decompress and hash each as its bytes arrive; one thread extracts in order as
/// decoded bytes arrive; all of them, and a registry serving from this host, share
/// the cores (`super::cpu`).
fn stream_policy(
    layers: &mut [SimLayerRun],
    image: &SimImage,
    host: &HostProfile,
    resolve_s: f64,
    pipeline: PipelineCpu,
) {
    let factor = pipeline.factor;
    let mut fetched = Vec::new();
    let mut input = Vec::new();
    for (i, l) in image.layers.iter().enumerate() {
        let lr = &mut layers[i];
        if lr.cached {
            continue;
        }
        let costs = cpu_costs(l, host);
        lr.verify_s = costs.verify * factor;
        lr.decompress_s = costs.decompress * factor;
        lr.extract_s = costs.extract * factor;
        let work = stream_work(l, host);
        let body = lr.start_s + lr.ttfb_s;
        let in_flight = lr.download_end_s - body;
        // The transfer's own CPU (the download task's, and a registry's on this
        // host) runs while the body arrives; an instantaneous transfer's lands on
        // the decoder, which waits for it.
        let transfer = work.transfer * factor + l.compressed as f64 * pipeline.serve_per_byte;
        let (transfer_cores, transfer_on_decoder) = if in_flight > 1e-12 {
            (transfer / in_flight, 0.0)
        } else {
            (0.0, transfer)
        };
        input.push(super::cpu::StreamLayer {
            body_s: body,
            download_end_s: lr.download_end_s.max(body),
            decode_work: work.decode * factor + transfer_on_decoder,
            extract_work: work.extract * factor,
            transfer_cores,
        });
        fetched.push(i);
    }
    let times = super::cpu::stream(&input, host.cpus, resolve_s);
    let mut prev_end = resolve_s;
    let mut done = fetched.into_iter().zip(times).peekable();
    for (i, lr) in layers.iter_mut().enumerate() {
        lr.end_s = match done.next_if(|(f, _)| *f == i) {
            Some((_, t)) => t.extracted_s.max(prev_end),
            // Cached: nothing to apply.
            None => prev_end,
        };
        prev_end = lr.end_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Compression;

    fn net(
        rtt_ms: f64,
        connect_rtts: f64,
        per_conn: Option<f64>,
        link: Option<f64>,
    ) -> NetworkProfile {
        NetworkProfile {
            rtt_ms,
            connect_rtts,
            connection_bandwidth: per_conn,
            link_bandwidth: link,
            ..NetworkProfile::unshaped()
        }
    }

    /// A host whose CPU stages cost nothing unless per-file costs are set.
    fn instant_host(per_file_s: f64) -> HostProfile {
        HostProfile {
            name: "t".into(),
            description: String::new(),
            cpus: 2,
            filesystem: String::new(),
            sha256_bps: 1e30,
            gzip_bps: 1e30,
            zstd_bps: 1e30,
            extract_bps: 1e30,
            extract_per_file_s: per_file_s,
            extract_per_dir_s: 0.0,
            pull: Default::default(),
        }
    }

    fn layer(name: &str, bytes: u64, files: u64) -> SimLayer {
        SimLayer {
            digest: name.into(),
            media_type: String::new(),
            compressed: bytes,
            uncompressed: bytes,
            file_bytes: bytes,
            files,
            dirs: 0,
            compression: Compression::Gzip,
            cached: false,
        }
    }

    fn image(layers: Vec<SimLayer>) -> SimImage {
        SimImage {
            name: "t".into(),
            layers,
            manifest_bytes: 0,
            config_bytes: 0,
            estimated: vec![],
        }
    }

    fn plain(n: NetworkProfile) -> Flow {
        Flow {
            registry: n.clone(),
            blobs: n,
            token: false,
            redirect: false,
            index: false,
            registry_on_host: false,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn start_up_request_processing_and_loopback_ceiling() {
        // pulltime starts requests after 5 ms of set-up; each request adds 1 ms of
        // processing: ping 1 (handshake) + 1 + 1 ms... on an unshaped network the
        // handshake and round trips are free, so ping, manifest and config take
        // 1 ms each: resolve ends at 8 ms. The blob's first byte comes 1 ms later,
        // and 1 MB at loopback's 100 MB/s takes 10 ms.
        let mut host = instant_host(0.0);
        host.pull.startup_s = 0.005;
        host.pull.request_s = 0.001;
        host.pull.loopback_bps = 1e8;
        let img = image(vec![layer("a", 1_000_000, 1)]);
        let run = simulate(
            &img,
            &plain(NetworkProfile::unshaped()),
            &host,
            Policy::Pulltime,
            3,
        );
        assert!(
            close(run.requests[0].start_s, 0.005),
            "{:?}",
            run.requests[0]
        );
        assert!(close(run.resolve_s, 0.008), "{}", run.resolve_s);
        assert!(
            close(run.layers[0].download_end_s, 0.019),
            "{}",
            run.layers[0].download_end_s
        );
        // A daemon has no set-up of its own.
        let docker = simulate(
            &img,
            &plain(NetworkProfile::unshaped()),
            &host,
            Policy::Docker,
            3,
        );
        assert!(close(docker.resolve_s, 0.003), "{}", docker.resolve_s);
    }

    #[test]
    fn a_registry_on_the_host_slows_a_cpu_bound_pull() {
        // 1 s of decoding on one core over a 1 s transfer: alone, decoding keeps up
        // and ends with the last byte; with serving costing a full core for that
        // second, serving runs first (up to nine tenths of the core, the rest
        // waiting until it can run) and the core does 2 s of work in all: the
        // pull ends at 2 s.
        let mut host = instant_host(0.0);
        host.cpus = 1;
        host.gzip_bps = 1e6;
        host.pull.serve_cpu_s_per_byte = 1e-6;
        let img = image(vec![layer("a", 1_000_000, 0)]);
        let n = net(0.0, 0.0, Some(1e6), None);
        let remote = simulate(&img, &plain(n.clone()), &host, Policy::Pulltime, 3);
        let mut here = plain(n);
        here.registry_on_host = true;
        let local = simulate(&img, &here, &host, Policy::Pulltime, 3);
        assert!(close(remote.wall_s, 1.0), "{}", remote.wall_s);
        assert!(close(local.wall_s, 2.0), "{}", local.wall_s);
    }

    #[test]
    fn streaming_cpu_factor_scales_the_stages_work() {
        // 1 MB gzip layer decoded at 1 MB/s on one core: 1 s of decoding, which
        // ends 1 s after the (instantaneous, loopback) download. A factor of 1.5
        // makes it 1.5 s, and the layer reports the scaled decompression; docker's
        // sequential policy is not pulltime's pipeline and stays at 1 s.
        let mut host = instant_host(0.0);
        host.cpus = 1;
        host.gzip_bps = 1e6;
        let img = image(vec![layer("a", 1_000_000, 0)]);
        let flow = plain(net(0.0, 0.0, None, None));
        let base = simulate(&img, &flow, &host, Policy::Pulltime, 3);
        host.pull.stream_cpu_factor = 1.5;
        let scaled = simulate(&img, &flow, &host, Policy::Pulltime, 3);
        let docker = simulate(&img, &flow, &host, Policy::Docker, 3);
        assert!(close(base.wall_s, 1.0), "{}", base.wall_s);
        assert!(close(scaled.wall_s, 1.5), "{}", scaled.wall_s);
        assert!(close(scaled.layers[0].decompress_s, 1.5));
        assert!(close(docker.wall_s, 1.0), "{}", docker.wall_s);
    }

    #[test]
    fn one_layer_known_bandwidth_and_rtt() {
        // ping: handshake 10 ms + 10 ms; manifest 10 ms; config 10 ms (reused
        // connection, empty body): resolve = 40 ms. Blob: 10 ms + 1 MB at 1 MB/s.
        let n = net(10.0, 1.0, Some(1e6), None);
        let run = simulate(
            &image(vec![layer("a", 1_000_000, 1)]),
            &plain(n),
            &instant_host(0.0),
            Policy::Pulltime,
            3,
        );
        assert!(close(run.resolve_s, 0.040), "{}", run.resolve_s);
        assert!(close(run.layers[0].ttfb_s, 0.010));
        assert!(
            close(run.layers[0].download_end_s, 1.050),
            "{}",
            run.layers[0].download_end_s
        );
        assert!(close(run.wall_s, 1.050), "{}", run.wall_s);
        assert_eq!(
            run.connections.len(),
            1,
            "the blob reuses the resolve connection"
        );
    }

    #[test]
    fn concurrent_downloads_share_the_link() {
        // Two 1 MB blobs over a 1 MB/s link: the second needs a new connection
        // (10 ms more); 2 MB leave the link 2 s after the first byte at 50 ms.
        let n = net(10.0, 1.0, None, Some(1e6));
        let run = simulate(
            &image(vec![layer("a", 1_000_000, 1), layer("b", 1_000_000, 1)]),
            &plain(n),
            &instant_host(0.0),
            Policy::Pulltime,
            3,
        );
        assert!(
            close(run.layers[0].download_end_s, 0.040 + 0.010 + 0.010 + 1.98),
            "{:?}",
            run.layers
        );
        assert!(
            close(run.layers[1].download_end_s, 0.050 + 2.0),
            "{:?}",
            run.layers
        );
        assert_eq!(run.connections.len(), 2);
        // One download at a time: strictly sequential.
        let run = simulate(
            &image(vec![layer("a", 1_000_000, 1), layer("b", 1_000_000, 1)]),
            &plain(net(10.0, 1.0, None, Some(1e6))),
            &instant_host(0.0),
            Policy::Pulltime,
            1,
        );
        assert!(
            close(
                run.layers[1].download_end_s,
                0.040 + 0.010 + 1.0 + 0.010 + 1.0
            ),
            "{:?}",
            run.layers
        );
    }

    #[test]
    fn docker_extracts_in_order_after_each_download() {
        // Layer a is big (slow to download) with 100 files; b is tiny. Docker
        // extracts b only after a, although b arrived first.
        let n = net(0.0, 0.0, Some(1e6), None);
        let img = image(vec![layer("a", 1_000_000, 100), layer("b", 1_000, 10)]);
        let host = instant_host(0.001);
        let run = simulate(&img, &plain(n.clone()), &host, Policy::Docker, 3);
        let (a, b) = (&run.layers[0], &run.layers[1]);
        assert!(b.download_end_s < a.download_end_s);
        assert!(close(a.end_s, a.download_end_s + 0.100));
        assert!(close(b.end_s, a.end_s + 0.010));
        // containerd waits for every download before unpacking anything.
        let run = simulate(&img, &plain(n), &host, Policy::Containerd, 3);
        assert!(close(
            run.layers[0].end_s,
            run.layers[0]
                .download_end_s
                .max(run.layers[1].download_end_s)
                + 0.100
        ));
    }

    #[test]
    fn pulltime_decodes_ahead_on_other_cores_and_extracts_in_order() {
        // A fast network (both 2 MB layers arrive within 20 ms), gzip at 2 MB/s
        // (1 s of decoding per layer) and 1 s of extraction per layer (1000 files).
        let n = net(0.0, 0.0, Some(1e9), None);
        let img = image(vec![
            layer("a", 2_000_000, 1000),
            layer("b", 2_000_000, 1000),
        ]);
        let mut host = instant_host(0.001);
        host.gzip_bps = 2e6;
        let run = simulate(&img, &plain(n.clone()), &host, Policy::Pulltime, 3);
        let (a, b) = (&run.layers[0], &run.layers[1]);
        // Two decoders (a and b) and the extractor (tailing a) share 2 cores at 2/3
        // each: a is decoded and extracted 1.5 s after its bytes start.
        let near = |x: f64, y: f64| (x - y).abs() < 0.005;
        assert!(near(a.end_s, a.start_s + a.ttfb_s + 1.5), "{}", a.end_s);
        // b was decoded alongside a, so only its extraction remains, on one core:
        // in-order extraction keeps the pull above 4 s of CPU over 2 cores.
        assert!(close(b.end_s, a.end_s + 1.0), "{} vs {}", b.end_s, a.end_s);
        // One core: the decoders queue behind each other and share with extraction.
        host.cpus = 1;
        let one = simulate(&img, &plain(n), &host, Policy::Pulltime, 3);
        assert!(one.wall_s >= 4.0 - 1e-6, "{}", one.wall_s);
    }

    #[test]
    fn cached_layers_cost_nothing() {
        let n = net(10.0, 1.0, Some(1e6), None);
        let mut l = layer("a", 1_000_000, 1);
        l.cached = true;
        let run = simulate(
            &image(vec![l, layer("b", 500_000, 1)]),
            &plain(n),
            &instant_host(0.0),
            Policy::Pulltime,
            3,
        );
        assert!(close(run.wall_s, 0.040 + 0.010 + 0.5), "{}", run.wall_s);
    }

    #[test]
    fn dockerhub_flow_adds_token_and_redirect_hops() {
        let mut n = net(30.0, 2.0, Some(1e7), Some(1e7));
        n.cdn = Some(Box::new(net(10.0, 2.0, Some(1e7), Some(1e7))));
        let flow = Flow {
            registry: n.clone(),
            blobs: n.cdn_profile(),
            token: true,
            redirect: true,
            index: false,
            registry_on_host: false,
        };
        let run = simulate(
            &image(vec![layer("a", 0, 0)]),
            &flow,
            &instant_host(0.0),
            Policy::Pulltime,
            3,
        );
        // ping 90 + token 30 + manifest 30 + config (30 + CDN 20 + 10) = 210 ms.
        assert!(close(run.resolve_s, 0.210), "{}", run.resolve_s);
        // The blob: registry 30 ms (reused) + CDN 10 ms (reused connection).
        assert!(close(run.layers[0].ttfb_s, 0.040), "{:?}", run.layers[0]);
        assert!(close(run.layers[0].redirect_s, 0.030));
    }
}
