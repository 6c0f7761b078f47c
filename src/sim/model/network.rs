//! The network side of the model: what the puller sends (requests, typed by
//! kind and endpoint), its connection pools (idle connections are reused, new ones
//! cost a handshake), the resolve phase, and the bandwidth blob transfers get.

pub use crate::oci::record::RequestKind;
use crate::profiles::host::HostProfile;
use crate::profiles::network::NetworkProfile;

use super::Flow;
use crate::sim::SimImage;

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
    /// TCP's part of it.
    pub tcp_s: f64,
    /// TLS's part of it; `None` over plain HTTP.
    pub tls_s: Option<f64>,
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
            let rtt = net.rtt_ms / 1e3;
            let setup = net.setup_rtts() * rtt;
            conns.push(SimConnection {
                target: self.endpoint,
                start_s: at,
                setup_s: setup,
                tcp_s: net.connect_rtts * rtt,
                tls_s: net.tls.map(|_| net.tls_rtts() * rtt),
            });
            setup
        }
    }
}

/// The puller's side of the network: its connection pools, and the requests and
/// connections it has made so far.
pub(super) struct Client<'a> {
    /// Where blobs come from.
    pub(super) flow: &'a Flow,
    /// The puller's host.
    pub(super) host: &'a HostProfile,
    registry: Pool,
    blobs: Pool,
    /// Requests sent so far.
    pub(super) requests: Vec<SimRequest>,
    /// Connections opened so far.
    pub(super) connections: Vec<SimConnection>,
}

/// A blob request's response: when its body starts, and its redirect hop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BlobResponse {
    /// Start to the body's first byte (the redirect hop included).
    pub(super) ttfb_s: f64,
    /// The registry's part when redirected, else 0.
    pub(super) redirect_s: f64,
}

impl<'a> Client<'a> {
    pub(super) fn new(flow: &'a Flow, host: &'a HostProfile) -> Self {
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
    pub(super) fn resolve(&mut self, image: &SimImage, start: f64) -> f64 {
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
    pub(super) fn blob_request(&mut self, at: f64, kind: RequestKind) -> BlobResponse {
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
    pub(super) fn release_blob_connection(&mut self) {
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
pub(super) struct Bandwidth {
    /// Each connection's cap.
    pub(super) per_connection: f64,
    /// The link's, shared by all transfers.
    pub(super) link: f64,
}

/// Blob transfers' bandwidth under `flow`. An unshaped profile is the registry on
/// this host: loopback's ceiling applies.
pub(super) fn blob_bandwidth(flow: &Flow, host: &HostProfile) -> Bandwidth {
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
