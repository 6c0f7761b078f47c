//! The pull model: a discrete-event simulation of one pull. Requests pay round
//! trips (and handshakes on new connections); transfers share bandwidth fairly,
//! each capped per connection and all together by the link; CPU stages cost what
//! the host profile says; a policy decides when each layer's processing may start.
//!
//! [`simulate`] runs the three parts in turn: the resolve phase and the requests
//! (`network`), the downloads (`download`), and the CPU work each layer's policy
//! schedules (`policy`, [`apply_policy`]).

use crate::profiles::host::HostProfile;
use crate::profiles::network::NetworkProfile;

use super::{Policy, SimError, SimImage};
use network::Client;

mod download;
mod network;
mod policy;
#[cfg(test)]
pub(crate) mod tests;

pub use network::{Endpoint, RequestKind, SimConnection, SimRequest};
pub use policy::{
    Below, CpuCosts, LayerWork, PipelineCpu, StreamWork, apply_policy, cpu_costs, layer_work,
    stream_work,
};

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

/// Simulates one cold pull. Fails if an event loop cannot finish ([`SimError`]).
pub fn simulate(
    image: &SimImage,
    flow: &Flow,
    host: &HostProfile,
    policy: Policy,
    max_downloads: usize,
) -> Result<SimRun, SimError> {
    let own = policy.own_costs(host);
    // A puller's own loopback ceiling, where its pulls showed one.
    let with_own_loopback;
    let host = match own.filter(|c| c.loopback_bps > 0.0) {
        Some(c) => {
            let mut h = host.clone();
            h.pull.loopback_bps = c.loopback_bps;
            with_own_loopback = h;
            &with_own_loopback
        }
        None => host,
    };
    let mut client = Client::new(flow, host);
    // pulltime sets up its client and scratch space first; daemons have done so,
    // and a command's own start-up is fitted from its pulls.
    let start = match own {
        _ if policy.is_pulltime() => host.pull.startup_s,
        Some(c) => c.startup_s,
        None => 0.0,
    };
    let resolve_s = client.resolve(image, start);
    let mut layers = download::run(image, &mut client, resolve_s, max_downloads)?;
    apply_policy(
        &mut layers,
        image,
        host,
        policy,
        resolve_s,
        PipelineCpu::of(flow, host),
    )?;
    // What the puller does after the last layer (writing the image's metadata).
    let finish = own.map_or(0.0, |c| c.finish_s);
    Ok(SimRun {
        wall_s: layers.iter().map(|l| l.end_s).fold(resolve_s, f64::max) + finish,
        resolve_s,
        layers,
        requests: client.requests,
        connections: client.connections,
    })
}
