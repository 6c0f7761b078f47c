//! The pullers people run (docker, containerd, podman, skopeo+umoci), measured
//! from outside and decomposed into the same record as pulltime's own pulls.
//!
//! Each puller pulls through a [`proxy::RecordingProxy`] in front of the real
//! registry, so every request and every blob byte is timed as pulltime times its
//! own. The puller's own signals add what the proxy cannot see: docker's progress
//! stream ([`docker`]), containerd's snapshot events ([`containerd`]), podman's
//! debug log ([`podman`]), umoci's per-layer log ([`skopeo_umoci`]); CPU comes from
//! `/proc` ([`cpu`]). What none of them shows stays `None` in the record, with the
//! reason in `runs[].unobserved`.
//!
//! Between runs the image is removed with its layers, and the next run is checked
//! through the proxy to have fetched every byte ([`crate::oci::record::ColdCheck`]).
//! pulltime itself is a puller here too, so that [`Session`]s of all of them can
//! be rotated side by side.

pub mod command;
pub mod containerd;
pub mod cpu;
pub mod docker;
pub mod podman;
pub mod proxy;
mod session;
pub mod skopeo_umoci;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::oci::record::{CpuUsage, PullerEvent, Unobserved};
use crate::pipeline::PullError;

pub use session::{Session, SessionOptions, measure_puller};

/// What went wrong with another puller.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The recording proxy could not start or forward.
    #[error("recording proxy: {0}")]
    Proxy(String),
    /// A command could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("{what} failed ({status}):\n{output}")]
    Command {
        /// What was being done.
        what: String,
        /// Its exit status.
        status: String,
        /// Its last output lines.
        output: String,
    },
    /// The puller's daemon cannot be reached, or the puller is not installed.
    #[error("{daemon} is not reachable at {address}: {reason}")]
    Unreachable {
        /// Which daemon or tool.
        daemon: &'static str,
        /// Where it was looked for.
        address: String,
        /// What to do about it.
        reason: String,
    },
    /// The puller answered with an error.
    #[error("{puller}: {message}")]
    Puller {
        /// Which puller.
        puller: &'static str,
        /// Its words.
        message: String,
    },
    /// A file or directory pulltime needs could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C (the cancellation token) stopped the runs.
    #[error("stopped")]
    Interrupted,
    /// A run would not be cold.
    #[error("{0}")]
    NotCold(String),
    /// pulltime's own pull (as a puller, or to learn the image's facts) failed.
    #[error(transparent)]
    Pull(#[from] PullError),
}

/// Which program pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullerKind {
    /// pulltime's own pipeline.
    Pulltime,
    /// dockerd through its Engine API.
    Docker,
    /// containerd through `ctr images pull`.
    Containerd,
    /// `podman pull`.
    Podman,
    /// `skopeo copy` to an OCI layout, then `umoci raw unpack`.
    SkopeoUmoci,
}

impl PullerKind {
    /// Every puller, in the order tables list them.
    pub const ALL: [PullerKind; 5] = [
        PullerKind::Pulltime,
        PullerKind::Docker,
        PullerKind::Containerd,
        PullerKind::Podman,
        PullerKind::SkopeoUmoci,
    ];

    /// The name records and flags use.
    pub fn as_str(self) -> &'static str {
        match self {
            PullerKind::Pulltime => "pulltime",
            PullerKind::Docker => "docker",
            PullerKind::Containerd => "containerd",
            PullerKind::Podman => "podman",
            PullerKind::SkopeoUmoci => "skopeo-umoci",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<PullerKind> {
        PullerKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The download concurrency it uses by default (0: no limit).
    pub fn max_concurrent_downloads(self) -> usize {
        match self {
            PullerKind::Pulltime | PullerKind::Docker => 3,
            PullerKind::Containerd => 0,
            PullerKind::Podman | PullerKind::SkopeoUmoci => 6,
        }
    }
}

/// How to reach the other pullers.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// dockerd's socket: `unix:///var/run/docker.sock`.
    pub docker_host: String,
    /// containerd's socket.
    pub containerd_address: PathBuf,
    /// containerd namespace to pull into.
    pub containerd_namespace: String,
    /// containerd snapshotter (`overlayfs`, `native`).
    pub snapshotter: String,
    /// podman `--root`.
    pub podman_root: Option<PathBuf>,
    /// podman `--runroot`.
    pub podman_runroot: Option<PathBuf>,
    /// The proxy's connect and read timeout towards the registry.
    pub timeout: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            docker_host: std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
            containerd_address: "/run/containerd/containerd.sock".into(),
            containerd_namespace: "pulltime".into(),
            snapshotter: "overlayfs".into(),
            podman_root: None,
            podman_runroot: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The image as pullers other than pulltime are given it: through the proxy.
#[derive(Debug, Clone)]
pub struct ProxiedImage {
    /// `127.0.0.1:PORT` of the recording proxy.
    pub proxy: String,
    /// Repository path (`library/python`).
    pub repository: String,
    /// Tag, or `sha256:...` when the reference had a digest.
    pub tag_or_digest: String,
    /// Layer blob digests, manifest order.
    pub layers: Vec<String>,
    /// Layer chain IDs (containerd's snapshot names, docker's layer IDs).
    pub chain_ids: Vec<String>,
    /// The config digest (the image ID of docker and podman).
    pub config_digest: String,
}

impl ProxiedImage {
    /// `127.0.0.1:PORT/repo:tag` or `127.0.0.1:PORT/repo@sha256:...`.
    pub fn proxied_reference(&self) -> String {
        let sep = if self.tag_or_digest.contains(':') {
            '@'
        } else {
            ':'
        };
        format!(
            "{}/{}{sep}{}",
            self.proxy, self.repository, self.tag_or_digest
        )
    }
}

/// The reasons a puller's phases cannot be seen, as records carry them.
pub fn unobserved(reasons: &[(&str, &str)]) -> Vec<Unobserved> {
    reasons
        .iter()
        .map(|(phase, reason)| Unobserved {
            phase: phase.to_string(),
            reason: reason.to_string(),
        })
        .collect()
}

/// A puller's settings as `PullerInfo::settings` holds them.
pub fn settings<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// How docker and containerd decompress gzip here: with unpigz when it is
/// installed, else with Go's own gzip.
pub fn decompressor() -> String {
    if command::which("unpigz").is_some() {
        "unpigz".into()
    } else {
        "go gzip (no unpigz installed)".into()
    }
}

/// Layer chain IDs from diff IDs: the first is its diff ID, each next one is
/// `sha256(parent + " " + diff_id)` (the OCI image spec's ChainID).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// What a puller let us see of one run (offsets from the run start).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The pull command or API call: started, ended.
    pub window: (f64, f64),
    /// Per layer: extraction start and end, when the puller shows both.
    pub extract: Vec<Option<(f64, f64)>>,
    /// Per layer: extraction start, when the puller shows only that.
    pub extract_started: Vec<Option<f64>>,
    /// Per layer: when the puller said its download was done.
    pub download_done: Vec<Option<f64>>,
    /// The puller applies layers one after the other, in order, each once its
    /// download is done and the layer below is applied (podman): a layer whose
    /// extraction is seen only starting ends where the next one starts, if that
    /// one had been waiting for it.
    pub applies_in_order: bool,
    /// When the puller said every layer was applied (podman: "Writing manifest
    /// to image destination"): the end of the last layer's extraction.
    pub all_applied_at: Option<f64>,
    /// Every per-layer signal, in order of arrival.
    pub events: Vec<PullerEvent>,
    /// CPU of the puller's processes over the run.
    pub cpu: Option<CpuUsage>,
    /// Phases this puller does not show, and why.
    pub unobserved: Vec<Unobserved>,
}

impl Observed {
    /// Records a signal about `layer`.
    pub fn event(&mut self, layer: usize, event: &str, at_s: f64) {
        self.events.push(PullerEvent {
            layer,
            event: event.into(),
            at_s,
        });
    }

    /// Nothing seen yet of `layers` layers.
    pub fn new(layers: usize, window: (f64, f64)) -> Observed {
        Observed {
            window,
            extract: vec![None; layers],
            extract_started: vec![None; layers],
            download_done: vec![None; layers],
            ..Observed::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        // From an image built with umoci and pulled by containerd, whose snapshot
        // names were these chain IDs.
        let diff = [
            "sha256:f4591ccfd2eced24b665aaa17cba9df904376ab6a9e5335471fb0b96ca7137ec".to_string(),
        ];
        assert_eq!(chain_ids(&diff), diff.to_vec());
        let two = chain_ids(&["sha256:a".into(), "sha256:b".into()]);
        assert_eq!(
            two[1],
            format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"sha256:a sha256:b"))
            )
        );
    }

    #[test]
    fn puller_names_round_trip() {
        for k in PullerKind::ALL {
            assert_eq!(PullerKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(PullerKind::parse("cri-o"), None);
    }
}
